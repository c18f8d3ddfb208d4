from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compile.site import compile_site, load_model, load_toml
from core.decide import in_holdout
from core.engine import Engine
from core.model import Lifecycle, LinearPolicy, Slot, Taxonomy, ThompsonPolicy, Variant
from core.policies import prepare
from origin.aggregates import Aggregates, aggregate
from origin.learn import (
    LearnConfig,
    arm_shrinkage,
    beta_parameters,
    learn,
    linear_models,
    overlay,
    ridge_solve,
    thompson_weights,
    widths,
)
from origin.store import SqliteStore
from origin.training import Reward, TrainingRow, Windows, training_rows
from tests.conftest import FIXTURES
from tests.edge.helpers import decision_marks
from tests.edge.local import Edge


def row(
    slot: str, variant: str, x: tuple[float, ...], r: float, reason: str = "policy"
) -> TrainingRow:
    return TrainingRow("d", 0, "v", slot, variant, 0.5, reason, "s", x, int(r > 0), 0, 0.0, r)


def test_reward_definition_and_parse() -> None:
    assert Reward()(1, 0, 0.0) == 1.0 and Reward()(0, 1, 50.0) == 0.0
    r = Reward.parse("click=1, conversion=5,value=0.01")
    assert r(2, 1, 100.0) == pytest.approx(1 + 5 + 1.0)
    with pytest.raises(ValueError, match="hover"):
        Reward.parse("hover=1")
    with pytest.raises(ValueError, match="not a number"):
        Reward.parse("click=lots")


def recorded(fixture_blob: bytes, visitors: int, click_every: int = 3) -> list[dict[str, Any]]:
    """What the edge handler shipped for ``visitors`` new visitors on ``/`` (and, for every
    ``click_every``-th, a click on their first decision through the beacon)."""
    edge = Edge(fixture_blob)
    for n in range(visitors):
        edge.jar.clear()
        page = edge.request("/", user_agent=f"Mozilla/5.0 (X11; Linux) visitor {n}")
        if n % click_every == 0:
            first = sorted(decision_marks(page.page.handle))[0]  # type: ignore[union-attr]
            body = json.dumps({"events": [{"type": "click", "decision": first, "id": "c"}]})
            edge.request("/_edgepick/events", method="POST", body=body.encode())
    return edge.shipped()


def test_training_rows_join_outcomes_and_flag_policy_draws(
    tmp_path: Path, fixture_blob: bytes
) -> None:
    store = SqliteStore(tmp_path / "e.db")
    holdout = Engine.from_bytes(fixture_blob).site.holdout
    for visitors in (80, 160, 320):  # until one is in the 5% holdout (its rows: not learnable)
        shipped = recorded(fixture_blob, visitors)
        exposures = [e for e in shipped if e["type"] == "exposure"]
        held = {e["visitor"] for e in exposures if in_holdout(e["visitor"], holdout)}
        if held:
            break
    # the edge holds out exactly the visitors whose draw says so, and logs their defaults
    assert held and all((e["visitor"] in held) == (e["reason"] == "holdout") for e in exposures)
    store.append(shipped)
    clicked = {e["decision"] for e in shipped if e["type"] == "click"}
    rows = {r.decision: r for r in training_rows(store, Windows(), Reward())}
    assert set(rows) == {e["id"] for e in exposures} and clicked <= set(rows)
    for e in exposures:
        r = rows[e["id"]]
        assert r.reward == float(e["id"] in clicked) and r.features == tuple(e["features"])
        assert r.learnable == (e["reason"] in ("policy", "fallback"))
        assert r.learnable == bool(r.eligible) and len(r.eligible) == len(r.probs)
    assert any(not r.learnable for r in rows.values()) and any(r.learnable for r in rows.values())


def test_evaluation_reads_the_logged_distribution(tmp_path: Path, fixture_blob: bytes) -> None:
    """Off-policy evaluation of the edge's own logs: every policy draw usable, nothing
    reconstructed; IPS of the logging policy equals the on-policy mean (a self-check)."""
    from origin.evaluate import evaluate_store
    from origin.registry import Registry

    store = SqliteStore(tmp_path / "e.db")
    store.append(recorded(fixture_blob, 80))
    registry = Registry(tmp_path / "registry")
    registry.set_current(registry.add(fixture_blob).id)
    results = {r.slot: r for r in evaluate_store(store, registry, resamples=50)}
    drawn = [r for r in training_rows(store, Windows(), Reward()) if r.learnable]
    assert sum(r.rows for r in results.values()) == len(drawn) > 0
    assert all(r.dropped == 0 for r in results.values())
    for result in results.values():
        assert result.on_policy is not None
        ips = result.estimates["logging"]["ips"].value
        assert ips == pytest.approx(result.on_policy.value, abs=1e-4)


def test_thompson_weight_of_the_truly_best_arm_is_highest() -> None:
    rng = np.random.default_rng(7)
    truth = {"a": 0.05, "b": 0.12, "c": 0.08}
    rows = [row("s", v, (), float(rng.random() < p)) for v, p in truth.items() for _ in range(1500)]
    slot = Slot("s", "element", "a", tuple(Variant(v, v) for v in truth), ThompsonPolicy((1, 1, 1)))  # type: ignore[arg-type]
    agg = aggregate(rows, {"s": 0})
    weights = thompson_weights(
        slot, agg.slot_arms("s"), LearnConfig(floor=0.03), np.random.default_rng(0)
    )
    assert max(weights, key=weights.__getitem__) == "b"
    assert weights["b"] > 0.9 and min(weights.values()) >= 0.01  # the floor
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-5)


def test_new_variant_prior_comes_from_its_taxonomy_siblings() -> None:
    variants = [
        Variant("sale-1", "", Taxonomy(theme="sale")),
        Variant("brand", "", Taxonomy(theme="brand")),
        Variant("sale-new", "", Taxonomy(theme="sale")),
        Variant("odd-new", "", Taxonomy(theme="odd")),
    ]
    rows = [row("s", "sale-1", (), float(i < 40)) for i in range(100)]
    rows += [row("s", "brand", (), float(i < 10)) for i in range(100)]
    agg = aggregate(rows, {"s": 0})
    alpha, beta = beta_parameters(variants, agg.slot_arms("s"), prior_strength=10)
    mean = alpha / (alpha + beta)
    assert mean[2] == pytest.approx((1 + 4) / 12)  # sibling rate 0.4 with 10 pseudo-observations
    assert mean[3] == pytest.approx((1 + 2.5) / 12)  # population rate 0.25


def test_ridge_recovers_planted_coefficients(engine: Any) -> None:
    slot = next(s for s in engine.site.slots if s.name == "hero")
    features = slot.policy.features
    rng = np.random.default_rng(3)
    planted = {
        "hero-running": {"affinity:running": 0.3, "device:mobile": -0.05},
        "hero-brand": {"weekend": 0.1},
    }
    rows = []
    for vid, coefs in planted.items():
        theta = np.array([coefs.get(f, 0.0) for f in features])
        theta[features.index("bias")] = 0.1
        for _ in range(4000):
            x = rng.random(len(features))
            x[features.index("bias")] = 1.0
            rows.append(row("hero", vid, tuple(x), float(x @ theta + rng.normal(0, 0.05))))
    models = linear_models(
        slot, aggregate(rows, widths(engine.site)).slot_arms("hero"), LearnConfig()
    )
    for vid, coefs in planted.items():
        got = models[vid].weights
        for f in features:
            want = coefs.get(f, 0.1 if f == "bias" else 0.0)
            assert got[f] == pytest.approx(want, abs=0.02), (vid, f)
    # a variant with no rows gets its siblings' or the population model, never nothing
    assert set(models) == {v.id for v in slot.variants}


def test_learned_model_compiles_with_the_fixture_site(tmp_path: Path) -> None:
    config = load_toml(FIXTURES / "site.toml")
    site = compile_site(config, load_model(FIXTURES / "model.json"))
    rng = np.random.default_rng(1)
    hero = next(s for s in site.slots if s.name == "hero")
    assert isinstance(hero.policy, LinearPolicy)
    width = len(hero.policy.features)
    before = next(s for s in site.slots if s.name == "headline").policy
    assert isinstance(before, ThompsonPolicy)
    rows = [
        row("headline", v.id, (), float(rng.random() < 0.1))
        for v in next(s for s in site.slots if s.name == "headline").variants
        for _ in range(50)
    ]
    rows += [
        row("hero", v.id, tuple(rng.random(width)), float(rng.random() < 0.1))
        for v in hero.variants[:3]
        for _ in range(50)
    ]
    model = overlay(load_model(FIXTURES / "model.json"), learn(site, aggregate(rows, widths(site))))
    assert set(model["slots"]["hero"]) == {"arms", "cold_start", "gammas"}  # hero: squarecb
    assert model["slots"]["promo"] == load_model(FIXTURES / "model.json")["slots"]["promo"]
    learned = compile_site(config, model)
    headline = next(s for s in learned.slots if s.name == "headline")
    assert isinstance(headline.policy, ThompsonPolicy)
    assert headline.policy.weights != before.weights
    retired = [i for i, v in enumerate(headline.variants) if v.lifecycle is not Lifecycle.ACTIVE]
    assert all(headline.policy.weights[i] == 0.0 for i in retired)


# ------------------------------------------------------------ aggregates merge

rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.lists(st.floats(-3, 3, allow_nan=False), min_size=2, max_size=2),
        st.floats(0, 2, allow_nan=False),
    ),
    max_size=30,
)


def _agg(items: list[tuple[str, list[float], float]]) -> Aggregates:
    return aggregate([row("s", v, tuple(x), r) for v, x, r in items], {"s": 2})


def test_merge_of_partials_equals_aggregate_of_all() -> None:
    rng = np.random.default_rng(5)
    items = [
        (str(rng.choice(["a", "b"])), list(rng.random(2)), float(rng.random())) for _ in range(300)
    ]
    parts = [_agg(items[i : i + 70]) for i in range(0, 300, 70)]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.merged(p)
    assert merged.close_to(_agg(items))
    stats = merged.arms[("s", "a")]
    gram = stats.gram()
    assert gram[0, 0] == stats.m == stats.n and np.allclose(gram, gram.T)


@settings(max_examples=60, deadline=None)
@given(rows_strategy, rows_strategy, rows_strategy)
def test_merge_is_associative_and_commutative(a: list, b: list, c: list) -> None:  # type: ignore[type-arg]
    x, y, z = _agg(a), _agg(b), _agg(c)
    left = x.merged(y).merged(z)
    assert left.close_to(x.merged(y.merged(z)))
    assert left.close_to(z.merged(y).merged(x))
    assert left.close_to(_agg(a + b + c))


def test_streamed_sums_in_blocks_equal_one_sum_and_keep_no_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import origin.aggregates as aggregates

    monkeypatch.setattr(aggregates, "BLOCK_ROWS", 16)  # many blocks from a few hundred rows
    rng = np.random.default_rng(11)
    items = [
        (str(rng.choice(["a", "b"])), list(rng.random(2)), float(rng.random())) for _ in range(300)
    ]
    summer = aggregates.Summer({"s": 2})
    for v, x, r in items:
        summer.add(row("s", v, tuple(x), r))
        assert all(len(xs) < 16 for xs, _ in summer.grouped.values())  # bounded while streaming
    streamed = summer.result()
    assert streamed.close_to(_agg(items)) and summer.result().close_to(_agg(items))
    assert sum(s.n for s in streamed.arms.values()) == 300


# ------------------------------------------------------------ squarecb's learned gammas


def _squarecb_site() -> Any:
    config = load_toml(FIXTURES / "site.toml")
    config["slots"]["hero"]["policy"]["exploration"] = "squarecb"
    return config, compile_site(config, None)


def _hero_rows(site: Any, per_arm: int, scale: float, seed: int = 4) -> list[TrainingRow]:
    hero = next(s for s in site.slots if s.name == "hero")
    features = hero.policy.features
    rng = np.random.default_rng(seed)
    rows = []
    for k, v in enumerate(hero.variants[:4]):
        for _ in range(per_arm):
            x = (rng.random(len(features)) < 0.3).astype(float)
            x[features.index("bias")] = 1.0
            clicked = rng.random() < 0.02 + 0.03 * k + 0.1 * x[features.index("device:mobile")]
            rows.append(row("hero", v.id, tuple(x), scale * float(clicked)))
    return rows


def test_squarecb_gammas_grow_like_sqrt_n_and_ignore_the_reward_scale() -> None:
    config, site = _squarecb_site()
    hero = next(s for s in site.slots if s.name == "hero")
    learned = {
        (n, scale): learn(site, aggregate(_hero_rows(site, n, scale), widths(site)))
        for n in (400, 1600)
        for scale in (1.0, 25.0)
    }
    gammas = {key: model["slots"]["hero"]["gammas"] for key, model in learned.items()}
    trained = [v.id for v in hero.variants[:4]]
    untrained = [v.id for v in hero.variants[4:]]
    for g in gammas.values():
        assert set(g) == {v.id for v in hero.variants}
        assert all(g[v] > 0 for v in trained) and all(g[v] == 0.0 for v in untrained)
    for v in trained:  # rewards x25: gamma / 25 (scores x25), so gamma x gap is unchanged
        assert gammas[(400, 25.0)][v] == pytest.approx(gammas[(400, 1.0)][v] / 25, rel=1e-4)
        # 4x the data: about 2x the gamma (sigma is re-estimated, so not exactly)
        assert gammas[(1600, 1.0)][v] / gammas[(400, 1.0)][v] == pytest.approx(2.0, rel=0.15)
    # the served probabilities are the same whatever the reward's scale
    x = tuple(1.0 if f in ("bias", "device:mobile") else 0.0 for f in hero.policy.features)
    eligible = [i for i, v in enumerate(hero.variants) if v.lifecycle is Lifecycle.ACTIVE]
    served = {}
    for scale in (1.0, 25.0):
        compiled = compile_site(config, learned[(400, scale)])
        policy = next(s for s in compiled.slots if s.name == "hero").policy
        assert isinstance(policy, LinearPolicy) and len(policy.gammas) == len(hero.variants)
        served[scale] = prepare(policy).score(eligible, x, False).probabilities
    assert served[25.0] == pytest.approx(served[1.0], abs=1e-4)
    # and exploration shrinks with the evidence: the share off the best arm at 4x the data
    compiled = compile_site(config, learned[(1600, 1.0)])
    policy = next(s for s in compiled.slots if s.name == "hero").policy
    more = prepare(policy).score(eligible, x, False).probabilities
    assert 1 - max(more) < 1 - max(served[1.0])


def test_squarecb_without_reward_variation_explores_uniformly() -> None:
    _, site = _squarecb_site()
    rows = _hero_rows(site, 50, 0.0)  # every reward 0
    model = learn(site, aggregate(rows, widths(site)))
    assert set(model["slots"]["hero"]["gammas"].values()) == {0.0}


def test_a_softmax_slot_gets_no_gammas() -> None:
    config = load_toml(FIXTURES / "site.toml")
    config["slots"]["hero"]["policy"] |= {"exploration": "softmax", "temperature": 0.05}
    site = compile_site(config, None)
    model = learn(site, aggregate(_hero_rows(site, 50, 1.0), widths(site)))
    assert "gammas" not in model["slots"]["hero"]


def test_evidence_pools_features_the_arms_do_not_differ_on() -> None:
    """Arms that differ in their intercept and on feature 0 only: the evidence keeps a weak
    prior there and pools every other feature's deviation into the population model."""
    rng = np.random.default_rng(9)
    width = 5
    rows = []
    for k, v in enumerate("abcd"):
        for _ in range(3000):
            x = rng.random(width)
            p = 0.05 + 0.04 * k + (0.2 * x[0] if k % 2 else 0.0)
            rows.append(row("s", v, tuple(x), float(rng.random() < p)))
    stats = aggregate(rows, {"s": width}).slot_arms("s")
    grams = [s.gram() for s in stats.values()]
    xtys = [s.xty for s in stats.values()]
    population = ridge_solve(np.sum(grams, axis=0), np.sum(xtys, axis=0), 1.0)
    lam = arm_shrinkage(
        grams,
        xtys,
        sum(s.yty for s in stats.values()),
        sum(s.m for s in stats.values()),
        population,
        1.0,
    )
    # coordinates: 0 the intercept, 1 feature 0 (real deviations), 2.. noise features
    assert lam[0] < 1e3 and lam[1] < 1e3
    assert all(lam[j] > 10 * max(lam[0], lam[1]) for j in range(2, width + 1))
    # the reward's scale does not change the choice
    scaled = aggregate([replace(r, reward=7.0 * r.reward) for r in rows], {"s": width})
    s7 = scaled.slot_arms("s")
    grams7 = [s.gram() for s in s7.values()]
    xtys7 = [s.xty for s in s7.values()]
    lam7 = arm_shrinkage(
        grams7,
        xtys7,
        sum(s.yty for s in s7.values()),
        sum(s.m for s in s7.values()),
        ridge_solve(np.sum(grams7, axis=0), np.sum(xtys7, axis=0), 1.0),
        1.0,
    )
    assert lam7 == pytest.approx(lam, rel=1e-3)
