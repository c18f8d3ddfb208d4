"""Pre-computed decisions (core.precomputed): on the demo's traffic the table serves most
requests, every served decision is exactly the live one (variant, propensity, distribution,
draw), the variants' distribution matches the live path's (chi-square), and the table's codec
refuses anything but a table for this snapshot."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chi2_contingency, chisquare

from core.decide import decide
from core.engine import Engine
from core.features import RequestContext
from core.precomputed import (
    context_key,
    decide_cached,
    decode_table,
    encode_table,
    key_from_text,
    key_text,
    serving,
)
from core.reason import Reason
from origin.population import population
from origin.precompute import demo_requests, hit_rate, inline_slots, precompute

NOW = 1_790_000_000


def test_served_decisions_are_the_live_ones(engine: Engine) -> None:
    job = precompute(engine, 1500, seed=1, now=NOW)
    served = serving(engine, job.table)
    traffic = list(demo_requests(engine, population(1500, 2, prefix="t"), NOW + 5000))
    slots = inline_slots(engine)
    hits = 0
    for state, context, now in traffic:
        cached = decide_cached(engine, served, state, context, now, slots, nonce="n1")
        if cached is None:
            continue
        hits += 1
        assert cached == decide(engine, state, context, now, slots, nonce="n1")
    assert hits / len(traffic) == hit_rate(engine, job.table, traffic) > 0.9
    reasons = {d.reason for s, c, t in traffic[:300] for d in decide(engine, s, c, t, slots)}
    assert Reason.POLICY in reasons and Reason.RULE in reasons  # both kinds of entry served


def test_the_distribution_is_the_live_paths(engine: Engine) -> None:
    """One frequent context, 6,000 visitors: the cached path's variants per slot against the
    entry's probabilities (goodness of fit) and against the live path on other visitors."""
    job = precompute(engine, 800, seed=3, now=NOW)
    served = serving(engine, job.table)
    slots = inline_slots(engine)
    state, context, now = next(iter(demo_requests(engine, population(1, 9), NOW)))
    key = context_key(engine, state, context, now, slots)
    assert key_text(key) in job.table
    cached: dict[str, Counter[str]] = {s: Counter() for s in slots}
    live: dict[str, Counter[str]] = {s: Counter() for s in slots}
    probs: dict[str, dict[str, float]] = {}
    for n in range(6000):
        visitor = state._replace(visitor_id=f"chi-{n}")
        found = decide_cached(engine, served, visitor, context, now, slots)
        if found is None:  # the holdout
            continue
        for d in found:
            cached[d.slot][d.variant] += 1
            probs[d.slot] = dict(zip(engine.slots[d.slot].ids, d.probabilities, strict=True))
        other = state._replace(visitor_id=f"live-{n}")
        for d in decide(engine, other, context, now, slots):
            if d.reason is not Reason.HOLDOUT:
                live[d.slot][d.variant] += 1
    tested = 0
    for slot in slots:
        variants = sorted(v for v, p in probs.get(slot, {}).items() if p > 0)
        if len(variants) < 2:
            continue
        observed = [cached[slot][v] for v in variants]
        total = sum(observed)
        expected = [probs[slot][v] * total for v in variants]
        assert chisquare(observed, expected).pvalue > 1e-3, slot
        table = [observed, [live[slot][v] for v in variants]]
        assert chi2_contingency(table).pvalue > 1e-3, slot
        tested += 1
    assert tested >= 2


def test_the_holdout_bots_and_unknown_contexts_go_live(engine: Engine) -> None:
    job = precompute(engine, 300, seed=4, now=NOW)
    served = serving(engine, job.table)
    slots = inline_slots(engine)
    state, context, now = next(iter(demo_requests(engine, population(1, 9), NOW)))
    bot = RequestContext(path=context.path, device="bot")
    assert decide_cached(engine, served, state, bot, now, slots) is None
    held = next(
        state._replace(visitor_id=f"h-{n}")
        for n in range(10_000)
        if decide(engine, state._replace(visitor_id=f"h-{n}"), context, now, slots)[0].reason
        is Reason.HOLDOUT
    )
    assert decide_cached(engine, served, held, context, now, slots) is None
    # another country and device: the same context key when no rule or feature reads them
    elsewhere = RequestContext(path=context.path, device="tablet", country="JP")
    found = decide_cached(engine, served, state, elsewhere, now, slots, nonce="x")
    assert found is None or found == decide(engine, state, elsewhere, now, slots, nonce="x")
    unusual = state._replace(visits=41, page_views=300, affinity=(("kids", 7.25),))
    assert decide_cached(engine, served, unusual, context, now, slots) is None


def test_the_table_codec(engine: Engine) -> None:
    job = precompute(engine, 300, seed=5, now=NOW)
    assert decode_table(job.blob, engine.snapshot_id) == (job.table, "always")
    assert decode_table(job.blob, "another-snapshot") is None
    budget = encode_table(engine.snapshot_id, job.table, "budget:2000")
    assert decode_table(budget, engine.snapshot_id) == (job.table, "budget:2000")
    with pytest.raises(ValueError, match="mode"):
        encode_table(engine.snapshot_id, job.table, "sometimes")
    for text in job.table:
        assert key_text(key_from_text(text)) == text


@given(st.one_of(st.binary(max_size=200), st.none(), st.integers(), st.text(max_size=50)))
def test_decode_table_never_raises(data: Any) -> None:
    assert decode_table(data, "s") is None


@given(
    st.lists(
        st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=8), st.none(), st.floats()),
        max_size=9,
    )
)
def test_decode_table_refuses_near_misses(entry: list[Any]) -> None:
    from core.packing import pack

    blob = pack(["edgepick-precomputed", 1, "s", "always", {"[]": [entry]}])
    assert decode_table(blob, "s") is None or len(entry) == 9


def test_the_benchmark_reports_its_figures(fixture_blob: bytes) -> None:
    """bench/precompute.py's measurement runs and reports what docs/signals.md quotes (the
    timings themselves are the benchmark's business, not a test's)."""
    from bench.precompute import figures

    found = figures(fixture_blob, visitors=150)
    assert found["demo_traffic"]["hit_rate"] > 0.8
    assert set(found["per_request_us"]["all_requests"]) == {"live", "precomputed_or_live"}
    assert set(found["cpu_saved_per_request"]) == {"all_requests", "hits_only"}
