"""The hostile-config corpus (tests/cases/hostile_config.toml): every case is a ConfigError with
its config path, never a crash, and nothing non-finite reaches a snapshot."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from compile.problems import ConfigError
from compile.site import compile_site
from tests.conftest import FIXTURES

CASES = tomllib.loads((Path(__file__).parents[1] / "cases" / "hostile_config.toml").read_text())
BASE = tomllib.loads((FIXTURES / "site.toml").read_text())
MODEL = json.loads((FIXTURES / "model.json").read_text())


def merged(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merged(base.get(key), value)
        return out
    return copy.deepcopy(patch)


def _refused(config: Any, model: Any, path: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_site(config, model)
    found = {p.path: p.message for p in info.value.problems}
    assert path in found, f"no problem at {path}: {found}"
    assert says in found[path]


@pytest.mark.parametrize("case", CASES["case"], ids=lambda c: c["name"])
def test_hostile_config_is_refused_with_its_path(case: dict[str, str]) -> None:
    _refused(merged(BASE, tomllib.loads(case["toml"])), MODEL, case["path"], case["says"])


@pytest.mark.parametrize("case", CASES["model"], ids=lambda c: c["name"])
def test_hostile_model_is_refused_with_its_path(case: dict[str, str]) -> None:
    _refused(BASE, merged(MODEL, json.loads(case["json"])), case["path"], case["says"])


def test_nesting_beyond_the_limit_is_refused_not_a_recursion_error() -> None:
    condition: dict[str, Any] = {"device": "mobile"}
    for _ in range(5000):
        condition = {"$and": [condition]}
    config = merged(BASE, {"audiences": {"mobile": {"condition": {}}}})
    config["audiences"]["mobile"]["condition"] = condition
    with pytest.raises(ConfigError, match="nested deeper than"):
        compile_site(config, MODEL)


def test_the_fixture_itself_compiles() -> None:
    assert compile_site(BASE, MODEL).slots
