"""The simulator: the real engine against synthetic visitors, regret against the oracle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from compile.site import compile_site, load_toml
from core.model import Exploration
from origin.population import population
from origin.simulate import (
    FIXTURE_SITE,
    FLAT,
    POLICIES,
    SimConfig,
    describe_seeds,
    run,
    run_seeds,
    slot_config,
    truth,
)


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return run(SimConfig(rounds=20, batch=150, seed=0))


def test_contextual_regret_grows_slower_than_thompson_than_fixed(result: dict[str, Any]) -> None:
    p = result["policies"]
    regret = {k: p[k]["cumulative_regret"] for k in p}
    assert regret["linear"] < regret["thompson"] < regret["fixed"]
    # and the slopes over the second half keep that order (not just a head start)
    half = len(p["fixed"]["curve"]["regret"]) // 2

    def slope(kind: str) -> float:
        curve = p[kind]["curve"]["regret"]
        return float(curve[-1] - curve[half])

    assert slope("linear") < slope("thompson") < slope("fixed")
    assert slope("linear") < 0.7 * slope("fixed")
    # the oracle is an upper bound of every policy's expected click-through rate
    assert all(p[k]["ctr_expected"] < result["oracle_ctr"] for k in p)


def test_the_simulation_is_reproducible_and_seeded(result: dict[str, Any]) -> None:
    again = run(SimConfig(rounds=20, batch=150, seed=0))
    assert again == result
    other = run(SimConfig(rounds=3, batch=50, seed=1))
    assert (
        other["policies"]["linear"]["curve"]["regret"]
        != result["policies"]["linear"]["curve"]["regret"][:3]
    )


def test_learning_policies_republish_and_the_fixed_split_does_not() -> None:
    p = run(SimConfig(rounds=3, batch=40, seed=2))["policies"]
    assert p["fixed"]["snapshots"] == 1  # decided on one snapshot throughout
    assert p["thompson"]["snapshots"] == 3 and p["linear"]["snapshots"] == 3


def test_slot_config_removes_prior_knowledge_and_rules() -> None:
    base = load_toml(FIXTURE_SITE)
    site = compile_site(slot_config(base, "hero", "fixed"), None)
    (slot,) = site.slots
    assert not slot.rules and site.holdout == 0.0
    active = [w for w, v in zip(slot.policy.weights, slot.variants, strict=True)]  # type: ignore[union-attr]
    assert len(set(active)) == 1  # a uniform split
    linear = compile_site(slot_config(base, "hero", "linear"), None).slots[0].policy
    assert all(b == 0.0 and not any(arm.weights) for b, arm in ((a.bias, a) for a in linear.arms))  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="unknown policy"):
        slot_config(base, "hero", "greedy")


def test_ground_truth_follows_the_visitor() -> None:
    site = compile_site(load_toml(FIXTURE_SITE), None)
    hero = {v.id: v for v in next(s for s in site.slots if s.name == "hero").variants}
    runner = next(v for v in population(200, 0) if v.interest == "running")
    assert truth(runner, hero["hero-running"]) > truth(runner, hero["hero-yoga"])


def test_cli_simulate_writes_json_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, plot = tmp_path / "sim.json", tmp_path / "regret.png"
    code = main(["simulate", "--rounds", "3", "--batch", "30", "-o", str(out), "--plot", str(plot)])
    assert code == 0
    assert "oracle CTR" in capsys.readouterr().out
    assert out.exists() and plot.read_bytes()[:4] == b"\x89PNG"


def test_context_free_truth_and_seeds_report_mean_and_spread() -> None:
    result = run_seeds(
        SimConfig(rounds=4, batch=60, seed=3, truth="context-free", policies=POLICIES), 2
    )
    assert result["config"]["seeds"] == 2 and [s["seed"] for s in result["per_seed"]] == [3, 4]
    assert result["oracle_ctr"]["mean"] == pytest.approx(max(FLAT.values()))
    for kind in POLICIES:
        regret = result["policies"][kind]["cumulative_regret"]
        assert regret["min"] <= regret["mean"] <= regret["max"] and regret["sd"] >= 0.0
        share = result["policies"][kind]["served_share_of_oracle"]["mean"]
        assert 0.0 < share <= 1.0
    ratio = result["linear_over_thompson_regret"]
    per_seed = [
        s["policies"]["linear"]["cumulative_regret"]
        / s["policies"]["thompson"]["cumulative_regret"]
        for s in result["per_seed"]
    ]
    assert ratio["mean"] == pytest.approx(sum(per_seed) / 2, abs=1e-4)
    # the fixed split's served share is its exact expected CTR: the mean rate over the oracle
    fixed = result["policies"]["fixed"]["served_share_of_oracle"]["mean"]
    assert fixed == pytest.approx(sum(FLAT.values()) / len(FLAT) / max(FLAT.values()), abs=1e-3)
    assert "mean +- sd" in describe_seeds(result)


def test_exploration_override_reaches_the_served_policy() -> None:
    base = load_toml(FIXTURE_SITE)
    authored = compile_site(slot_config(base, "hero", "linear", ""), None).slots[0].policy
    softmax = compile_site(slot_config(base, "hero", "linear", "softmax"), None).slots[0].policy
    assert authored.exploration is Exploration.SQUARECB  # type: ignore[union-attr]
    assert softmax.exploration is Exploration.SOFTMAX  # type: ignore[union-attr]
    p = run(SimConfig(rounds=3, batch=40, seed=2, policies=("linear",)))["policies"]["linear"]
    assert len(p["curve"]["served_ctr"]) == 3
    assert p["served_ctr_last_round"] <= p["oracle_ctr_last_round"]
