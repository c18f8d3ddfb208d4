"""The edge with a pre-computed table in KV (edge.precomputed): loaded after a response, then
serving the contexts it holds with the decisions the live path gives; off, missing or broken
tables mean live decisions."""

from __future__ import annotations

import asyncio

import pytest

from core.decide import decide
from core.engine import Engine
from core.precomputed import encode_table
from edge import precomputed
from edge.precomputed import KEY_PREFIX, TABLES, serves
from origin.population import population
from origin.precompute import demo_requests, inline_slots, precompute
from tests.edge.local import Edge

NOW = 1_790_000_000  # the fake runtime's clock (seconds)


@pytest.fixture(autouse=True)
def fresh_tables() -> None:
    TABLES.by_snapshot.clear()
    TABLES.hits = TABLES.misses = TABLES.errors = 0


def browse(blob: bytes, table: bytes | None, visitors: int = 12) -> list[Edge]:
    edges = []
    for _ in range(visitors):
        edge = Edge(blob)
        if table is not None:
            edge.io.kv[KEY_PREFIX + Engine.from_bytes(blob).snapshot_id] = table
        edge.io.now = NOW * 1000
        for path in ("/c/running", "/c/running", "/"):
            out = edge.request(path)
            assert out.status == 200
        edges.append(edge)
    return edges


def test_the_table_serves_once_loaded(fixture_blob: bytes, engine: Engine) -> None:
    job = precompute(engine, 1500, seed=1, now=NOW)
    edges = browse(fixture_blob, job.blob)
    assert TABLES.hits > 0 and TABLES.errors == 0
    assert TABLES.by_snapshot[engine.snapshot_id].served is not None
    for edge in edges:  # exposures logged as ever (test_decide_fresh_equals_live: the same)
        for e in edge.exposures():
            assert 0 < e["propensity"] <= 1
            if "probs" in e:  # the distribution, to 6 significant digits
                assert any(abs(p - e["propensity"]) < 1e-6 for p in e["probs"])


def test_off_missing_and_broken_tables_mean_live(fixture_blob: bytes, engine: Engine) -> None:
    job = precompute(engine, 300, seed=1, now=NOW)
    off = encode_table(engine.snapshot_id, job.table, "off")
    for table in (off, None, b"\x93garbage", encode_table("other-snapshot", job.table)):
        TABLES.by_snapshot.clear()
        browse(fixture_blob, table, visitors=3)
        assert TABLES.hits == 0


def test_a_budget_mode_serves_only_over_budget() -> None:
    assert serves("always", 0.0) and not serves("off", 1e9)
    assert not serves("budget:2000", 1500.0) and serves("budget:2000", 2500.0)


def test_decide_fresh_equals_live(engine: Engine) -> None:
    """The hook itself: the same decisions from the table as from core.decide."""
    job = precompute(engine, 800, seed=2, now=NOW)
    tables = precomputed.Tables()
    edge = Edge(None)
    edge.io.kv[KEY_PREFIX + engine.snapshot_id] = job.blob
    loaded = tables.current(edge.io, engine)
    asyncio.run(edge.io.drain())
    assert loaded.served is not None and loaded.mode == "always"
    slots = inline_slots(engine)
    for state, context, now in list(demo_requests(engine, population(200, 5), NOW))[:300]:
        got = precomputed.decide_fresh(
            engine, edge.io, state, context, now, slots, "nonce", None, 0.0, tables
        )
        assert got == decide(engine, state, context, now, slots, nonce="nonce")
    assert tables.hits > 200
