from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from growthbook import Experiment, GrowthBook

from core.decide import decide, in_holdout
from core.features import RequestContext, VisitorState
from core.model import Lifecycle
from core.reason import Reason

NOW = 1_790_000_000
RETURNING: dict[str, Any] = dict(
    visits=4,
    page_views=30,
    first_seen=NOW - 86400 * 30,
    last_seen=NOW - 7200,
    stage="consider",
    affinity=(("running", 5.0), ("deals", 1.0)),
)
DESKTOP_US = RequestContext(path="/", device="desktop", country="US", referrer="search", hour=19)


def visitor(i: int, **kw: Any) -> VisitorState:
    return VisitorState(f"visitor-{i}", **{**RETURNING, **kw})


def test_same_inputs_same_decisions(engine: Any) -> None:
    a = decide(engine, visitor(1), DESKTOP_US, NOW, nonce="r1")
    b = decide(engine, visitor(1), DESKTOP_US, NOW, nonce="r1")
    assert a == b
    c = decide(engine, visitor(1), DESKTOP_US, NOW, nonce="r2")
    assert [d.variant for d in c] == [d.variant for d in a]
    assert all(x.decision_id != y.decision_id for x, y in zip(a, c, strict=True))


def test_every_decision_is_a_distribution_with_exact_propensity(engine: Any) -> None:
    for i in range(200):
        for d in decide(engine, visitor(i), DESKTOP_US, NOW):
            assert sum(d.probabilities) == pytest.approx(1.0)
            assert d.propensity == d.probabilities[d.arm]
            assert d.propensity > 0
            assert engine.slots[d.slot].ids[d.arm] == d.variant


def test_empirical_frequencies_match_propensities(engine: Any) -> None:
    """Over 20,000 visitors with the same features, each slot's choices follow its probabilities."""
    n = 20_000
    counts: dict[str, Counter[int]] = {}
    probs: dict[str, tuple[float, ...]] = {}
    held = 0
    for i in range(n):
        decisions = decide(engine, visitor(i), DESKTOP_US, NOW)
        if decisions[0].reason is Reason.HOLDOUT:
            held += 1
            continue
        for d in decisions:
            counts.setdefault(d.slot, Counter())[d.arm] += 1
            assert probs.setdefault(d.slot, d.probabilities) == d.probabilities
    assert held == pytest.approx(n * engine.site.holdout, abs=4 * (n * 0.05 * 0.95) ** 0.5)
    assert set(counts) == {"landing", "hero", "headline", "cta", "recs", "promo"}
    for slot, counter in counts.items():
        total = sum(counter.values())
        chi2 = sum(
            (counter[i] - p * total) ** 2 / (p * total) for i, p in enumerate(probs[slot]) if p > 0
        )
        dof = sum(1 for p in probs[slot] if p > 0) - 1
        assert chi2 < 3 * dof + 20, (slot, chi2, counter, probs[slot])  # generous p << 0.001 bound


def test_only_active_variants_are_ever_chosen(engine: Any) -> None:
    inactive = {
        (slot.name, v.id)
        for slot in engine.site.slots
        for v in slot.variants
        if v.lifecycle is not Lifecycle.ACTIVE and v.id != slot.default
    }
    assert inactive  # the fixture has draft, paused and retired variants
    for i in range(3000):
        for d in decide(engine, visitor(i), DESKTOP_US, NOW):
            assert (d.slot, d.variant) not in inactive


def test_rules_force_restrict_and_exclude(engine: Any) -> None:
    eu = RequestContext(
        path="/", device="desktop", country="DE", referrer="email", utm_source="Newsletter"
    )
    for i in range(2000):
        by_slot = {d.slot: d for d in decide(engine, visitor(i), eu, NOW)}
        if by_slot["hero"].reason is Reason.HOLDOUT:
            continue
        assert by_slot["hero"].variant != "hero-price-drop"  # eu excludes
        assert by_slot["promo"].variant in {"promo-member-code", "promo-free-shipping"}  # restrict
        assert "audience eu excludes to 6" in by_slot["hero"].trail
    cart = decide(engine, visitor(1, stage="cart"), DESKTOP_US, NOW, ["promo"])[0]
    assert (cart.variant, cart.reason, cart.propensity) == ("promo-free-shipping", Reason.RULE, 1.0)
    staff = decide(engine, VisitorState("v-staff-2", **RETURNING), DESKTOP_US, NOW)
    assert {d.slot: d.variant for d in staff if d.reason is Reason.RULE} == {
        "landing": "home-standard",
        "hero": "hero-brand",
        "headline": "hl-classic",
    }


def test_holdout_gets_defaults_everywhere(engine: Any) -> None:
    held = next(i for i in range(1000) if in_holdout(f"visitor-{i}", engine.site.holdout))
    for d in decide(engine, visitor(held), DESKTOP_US, NOW):
        assert d.reason is Reason.HOLDOUT
        assert d.variant == engine.slots[d.slot].slot.default
        assert d.propensity == 1.0


def test_cold_start_visitors_get_the_population_allocation(engine: Any) -> None:
    fresh = VisitorState("new-1", visits=1, page_views=1, first_seen=NOW, last_seen=NOW)
    hero = decide(engine, fresh, DESKTOP_US, NOW, ["hero"])[0]
    if hero.reason is not Reason.HOLDOUT:
        assert hero.reason is Reason.FALLBACK
        assert hero.scores == ()
    returning = decide(engine, visitor(1), DESKTOP_US, NOW, ["hero"])[0]
    assert returning.reason in (Reason.POLICY, Reason.HOLDOUT)


def test_contextual_policy_follows_features(engine: Any) -> None:
    """Runners mostly see running recommendations; hikers mostly see hiking ones."""
    runners = Counter(
        decide(engine, visitor(i), DESKTOP_US, NOW, ["recs"])[0].variant for i in range(2000)
    )
    hikers = Counter(
        decide(engine, visitor(i, affinity=(("hiking", 6.0),)), DESKTOP_US, NOW, ["recs"])[
            0
        ].variant
        for i in range(2000)
    )
    assert runners.most_common(1)[0][0] == "recs-running"
    assert hikers.most_common(1)[0][0] == "recs-hiking"


def test_preview_overrides_force_any_variant(engine: Any) -> None:
    d = decide(
        engine, visitor(1), DESKTOP_US, NOW, ["hero"], overrides={"hero": "hero-evening-edit"}
    )
    assert (d[0].variant, d[0].reason, d[0].propensity) == (
        "hero-evening-edit",
        Reason.PREVIEW,
        1.0,
    )


def test_unknown_slots_and_other_pages_are_skipped(engine: Any) -> None:
    assert decide(engine, visitor(1), DESKTOP_US, NOW, ["nope"]) == []
    product_page = RequestContext(path="/p/run-shoe")
    assert "landing" not in {d.slot for d in decide(engine, visitor(1), product_page, NOW)}


def test_fixed_split_buckets_like_growthbook(engine: Any) -> None:
    """The fixed-split CTA slot puts each visitor in the variation GrowthBook's SDK would."""
    slot = engine.slots["cta"].slot
    weights = list(slot.policy.weights)
    agree = 0
    for i in range(500):
        vid = f"gb-{i}"
        if in_holdout(vid, engine.site.holdout):
            continue
        ours = decide(engine, VisitorState(vid, **RETURNING), DESKTOP_US, NOW, ["cta"])[0]
        gb = GrowthBook(attributes={"id": vid})
        result = gb.run(
            Experiment(
                key=slot.policy.seed,
                variations=list(range(len(weights))),
                weights=weights,
                hashVersion=2,
                seed=slot.policy.seed,
            )
        )
        assert ours.arm == result.variationId, vid
        agree += 1
    assert agree > 400


def test_a_site_without_audiences_or_rules_decides() -> None:
    from core.engine import Engine
    from core.model import FixedPolicy, Granularity, Site, Slot, Variant

    slot = Slot(
        "s",
        Granularity.ELEMENT,
        "a",
        (Variant("a", "A"), Variant("b", "B")),
        FixedPolicy((0.5, 0.5)),
    )
    engine = Engine.from_site(Site("bare", (slot,)))
    decisions = decide(engine, visitor(1), DESKTOP_US, NOW)
    assert [d.variant in ("a", "b") for d in decisions] == [True]


def test_attribute_documents_for_every_subset_of_keys() -> None:
    from core.features import ALL_ATTRIBUTES, ATTRIBUTES, attribute_builder, decayed_affinity
    from core.model import Signals

    state, signals = visitor(1), Signals()
    affinity = decayed_affinity(state, NOW, signals.half_life)
    # each attribute as its reference function computes it
    full = {k: f(state, DESKTOP_US, NOW, signals, affinity) for k, f in ATTRIBUTES.items()}
    assert full["affinity"] and full["visits"] == state.visits
    for n in range(len(ALL_ATTRIBUTES) + 1):
        for keys in (ALL_ATTRIBUTES[:n], ALL_ATTRIBUTES[n:]):
            built = attribute_builder(keys)(state, DESKTOP_US, NOW, signals, affinity)
            assert built == {k: full[k] for k in keys}
    extra = RequestContext(device="tablet", extra={"device": "kiosk", "plan": "pro"})
    built = attribute_builder(("device", "visits"))(state, extra, NOW, signals, affinity)
    assert built == {"device": "kiosk", "visits": state.visits, "plan": "pro"}
    with pytest.raises(ValueError, match="unknown attribute 'nope'"):
        attribute_builder(("nope",))


def test_thompson_segments_have_their_own_allocation(engine: Any) -> None:
    mobile = RequestContext(path="/", device="mobile", country="US", referrer="search")
    slot = engine.slots["headline"].slot
    mobile_weights = dict(zip(slot.policy.segments, slot.policy.segment_weights, strict=True))[
        "mobile"
    ]
    for i in range(300):
        d = decide(engine, visitor(i), mobile, NOW, ["headline"])[0]
        if d.reason is Reason.HOLDOUT:
            continue
        assert d.segment == "mobile" and ("allocation of segment {}", ("mobile",)) in d.steps
        assert d.policy == "thompson" and d.trail[-1].startswith("thompson over ")
        active = engine.slots["headline"].active
        total = sum(mobile_weights[j] for j in active)
        expected = 0.9 * mobile_weights[d.arm] / total + 0.1 / len(active)
        assert d.propensity == pytest.approx(expected)
    desktop = decide(engine, visitor(1), DESKTOP_US, NOW, ["headline"])[0]
    assert desktop.segment == ""


def test_a_slot_with_no_active_variant_serves_its_default() -> None:
    from core.engine import Engine
    from core.model import FixedPolicy, Granularity, Site, Slot, Variant

    variants = (
        Variant("a", "A", lifecycle=Lifecycle.PAUSED),
        Variant("b", "B", lifecycle=Lifecycle.RETIRED),
    )
    slot = Slot("s", Granularity.ELEMENT, "a", variants, FixedPolicy((0.5, 0.5)))
    engine = Engine.from_site(Site("paused", (slot,)))
    for i in range(20):
        (d,) = decide(engine, visitor(i), DESKTOP_US, NOW)
        assert (d.variant, d.reason, d.propensity) == ("a", Reason.DEFAULT, 1.0)
        assert d.trail == ("no eligible variant: default",)


def test_bots_get_the_defaults_everywhere(engine: Any) -> None:
    context = RequestContext(path="/", device="bot", country="US")
    for n in range(50):
        for d in decide(engine, VisitorState(f"crawler-{n}"), context, 1_790_000_000):
            assert d.variant == engine.slots[d.slot].slot.default and d.propensity == 1.0
            assert d.reason in (Reason.DEFAULT, Reason.HOLDOUT)  # a crawler in the holdout too
