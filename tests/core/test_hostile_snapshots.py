"""The hostile-snapshot corpus (tests/cases/hostile_snapshots.json): every blob is refused with
a SnapshotError naming the problem, and the edge serving it keeps its last good snapshot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.snapshot import SnapshotError, decode_snapshot
from tests.edge import local

CASES = json.loads((Path(__file__).parents[1] / "cases" / "hostile_snapshots.json").read_text())


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: c["name"])
def test_hostile_snapshots_raise_snapshot_error_only(case: dict[str, Any]) -> None:
    with pytest.raises(SnapshotError) as info:
        decode_snapshot(bytes.fromhex(case["hex"]))
    assert case["says"] in str(info.value)


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: c["name"])
def test_the_edge_keeps_its_last_good_snapshot(case: dict[str, Any], fixture_blob: bytes) -> None:
    edge = local.Edge(fixture_blob)
    good = edge.io.kv["snap/current"]
    edge.request("/")
    edge.io.kv["snap/current"] = "f" * 20
    edge.io.kv["snap/" + "f" * 20] = bytes.fromhex(case["hex"])
    out = edge.request("/")
    assert out.page is not None and "data-edgepick-decision" in out.page.handle
    health = local.health(edge)
    assert health["snapshot"] == good and health["snapshot_errors"] >= 1
    assert edge.stats.errors == 0
