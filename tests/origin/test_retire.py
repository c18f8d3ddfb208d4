from __future__ import annotations

from pathlib import Path

import numpy as np

from compile.site import compile_site, load_model, load_toml
from core.model import Lifecycle
from origin.aggregates import aggregate
from origin.overrides import Overrides
from origin.retire import RetireConfig, beta_upper, retirements
from origin.training import TrainingRow
from tests.conftest import FIXTURES


def rows(slot: str, variant: str, n: int, rate: float, seed: int = 0) -> list[TrainingRow]:
    rng = np.random.default_rng(seed)
    return [
        TrainingRow(
            "d",
            0,
            "v",
            slot,
            variant,
            1.0,
            "policy",
            "s",
            (),
            0,
            0,
            0.0,
            float(rng.random() < rate),
        )
        for _ in range(n)
    ]


def site_with_threshold(threshold: float):  # type: ignore[no-untyped-def]
    config = load_toml(FIXTURES / "site.toml")
    for v in config["slots"]["headline"]["variants"]:
        if v["id"] == "hl-free-returns":
            v["min_engagement"] = threshold
    return config, compile_site(config, load_model(FIXTURES / "model.json"))


def test_beta_upper_bound_is_a_quantile() -> None:
    assert beta_upper(3, 50, 0.95, 20000, 0) == beta_upper(3, 50, 0.95, 20000, 0)  # seeded
    assert abs(beta_upper(0, 0, 0.95, 40000, 1) - 0.95) < 0.01  # Beta(1,1) is uniform
    # Beta(1, b) has CDF 1 - (1 - x)^b, so its q-quantile is 1 - (1 - q)^(1/b)
    exact = 1 - 0.05 ** (1 / 100)
    assert abs(beta_upper(0, 99, 0.95, 40000, 2) - exact) < 0.002


def test_confidently_low_variant_is_retired_after_the_minimum_sample() -> None:
    _, site = site_with_threshold(0.05)
    low = rows("headline", "hl-free-returns", 400, 0.01)
    (found,) = retirements(site, aggregate(low, {"headline": 0}))
    assert (found.slot, found.variant, found.n) == ("headline", "hl-free-returns", 400)
    assert found.upper < 0.05 and "min_engagement 0.05" in found.describe()
    assert retirements(site, aggregate(low[:150], {"headline": 0})) == []  # n < 200
    fine = rows("headline", "hl-free-returns", 400, 0.06)
    assert retirements(site, aggregate(fine, {"headline": 0})) == []  # not below threshold
    assert retirements(site, aggregate(low, {"headline": 0}), RetireConfig(min_samples=500)) == []


def test_default_variant_is_never_retired() -> None:
    config = load_toml(FIXTURES / "site.toml")
    config["slots"]["headline"]["variants"][0]["min_engagement"] = 0.5  # hl-classic, the default
    site = compile_site(config, load_model(FIXTURES / "model.json"))
    assert (
        retirements(site, aggregate(rows("headline", "hl-classic", 500, 0.0), {"headline": 0}))
        == []
    )


def test_overrides_apply_to_a_copy_and_are_reversible(tmp_path: Path) -> None:
    config, _ = site_with_threshold(0.05)
    overrides = Overrides(tmp_path / "overrides.json")
    assert overrides.retire("headline", "hl-free-returns") and not overrides.retire(
        "headline", "hl-free-returns"
    )
    applied = compile_site(
        Overrides(tmp_path / "overrides.json").apply(config), load_model(FIXTURES / "model.json")
    )
    headline = next(s for s in applied.slots if s.name == "headline")
    assert (
        next(v for v in headline.variants if v.id == "hl-free-returns").lifecycle
        is Lifecycle.RETIRED
    )
    assert "status" not in next(
        v for v in config["slots"]["headline"]["variants"] if v["id"] == "hl-free-returns"
    )
    assert overrides.unretire("headline", "hl-free-returns") and not overrides.unretire(
        "headline", "x"
    )
    assert Overrides(tmp_path / "overrides.json").retired == {}
