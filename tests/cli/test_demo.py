"""The whole loop, small: wrangler dev + collector + sync rounds, driven over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.demo import run
from cli.devstack import WRANGLER
from origin.registry import Registry
from origin.store import SqliteStore

pytestmark = pytest.mark.skipif(not WRANGLER.exists(), reason="run `make setup` (npm ci) first")


def test_demo_loop_learns_and_publishes(tmp_path: Path) -> None:
    lines: list[str] = []
    rows = run(rounds=2, visitors=40, seed=3, workdir=tmp_path / "demo", say=lines.append)
    assert [r["round"] for r in rows] == [0, 1]
    assert all(r["errors"] == 0 for r in rows)
    assert rows[0]["snapshot"] != rows[1]["snapshot"]  # the sync round published a new snapshot
    assert rows[1]["events"]["exposure"] > rows[0]["events"]["exposure"] > 0
    registry = Registry(tmp_path / "demo" / "registry")
    assert registry.current() == rows[1]["snapshot"]
    store = SqliteStore(tmp_path / "demo" / "events.db")
    assert store.count("exposure") == rows[1]["events"]["exposure"]
    assert any("hero click-through" in line for line in lines)
    # nothing lost: what the edge says it sent = what the origin stored = what the learner used
    books = rows[-1]["accounting"]
    kinds = books["stored_by_kind"]
    assert books["sent"] is not None, "the worker's health reports no delivery counters"
    assert books["dropped"] == 0 and books["invalid"] == 0
    assert books["sent"] == books["shipped"] == books["stored"] == sum(kinds.values())
    assert kinds["exposure"] == rows[1]["events"]["exposure"] and kinds["page_view"] > 0
    assert books["learner_rows"] == kinds["exposure"]
    assert books["learner_outcomes"] == kinds["click"] + kinds["conversion"] > 0
    assert books["learner_used"] == books["learner_input"] and books["lost"] is False
    summary = next(line for line in lines if line.lstrip().startswith("events: the edge sent"))
    assert f"the edge sent {books['sent']}, " in summary
    assert f"the origin stored {books['stored']} (" in summary
    assert f"the learner used all {books['learner_used']} exposures and outcomes" in summary
    assert summary.endswith("nothing lost")
