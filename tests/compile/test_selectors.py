"""Slot selectors HTMLRewriter would refuse at the edge are refused by the compiler, with the
config path (at the edge every page would go unfilled)."""

from __future__ import annotations

import pytest

from compile.problems import ConfigError
from compile.site import compile_site, load_toml
from tests.conftest import FIXTURES


@pytest.mark.parametrize(
    ("selector", "accepted"),
    [
        ("#hero", True),
        ("main > a.cta:first-child", True),
        ("li:nth-child(2n+1)", True),
        ("a:not(.x)", True),
        ('[data-x="a:b+c,~"]', True),
        ("a:last-child", False),
        ("a::before", False),
        (".cta + p", False),
        ("div ~ p", False),
        ("a, b", False),
    ],
)
def test_selectors(selector: str, accepted: bool) -> None:
    config = load_toml(FIXTURES / "site.toml")
    config["slots"]["cta"]["selector"] = selector
    if accepted:
        compile_site(config)
        return
    with pytest.raises(ConfigError) as refused:
        compile_site(config)
    assert any(
        p.path == "slots.cta.selector" and p.value == selector for p in refused.value.problems
    )
