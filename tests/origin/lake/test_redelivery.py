"""An event delivered again after the hot buffer let go of it lands in the lake twice; the
learner still counts it once, and a compaction that drops the copy makes the next round
recompute its hours."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from starlette.testclient import TestClient

from core.engine import Engine
from core.events import SIGNATURE_HEADER, encode_batch, sign
from origin.collector import Service, create_app
from origin.lake.engines import DuckDBEngine
from origin.lake.retention import compact, drop_hot
from origin.lake.rounds import LakeRounds
from origin.lake.segments import DAY_MS, Lake
from origin.registry import Registry
from origin.store import Appended, SqliteStore
from origin.sync import SyncJob, run_round
from origin.targets import DirTarget
from tests.conftest import FIXTURES
from tests.origin.helpers import NOW_MS, SECRET, exposure
from tests.origin.test_sync_cli import simulate

LATER_MS = NOW_MS + 30 * DAY_MS  # the traffic's day is long closed, its rows past 7 days


class Recording(SqliteStore):
    """The store, keeping every batch appended to it as it came (the edge's events)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.sent: list[dict[str, Any]] = []

    def append(self, events: Sequence[Mapping[str, Any]]) -> Appended:
        self.sent.extend(dict(e) for e in events)
        return super().append(events)


def _job(root: Path, store: SqliteStore, lake: LakeRounds, hours: float) -> SyncJob:
    return SyncJob(
        config=FIXTURES / "site.toml",
        store=store,
        registry=Registry(root / "reg"),
        targets=[DirTarget(root / "kv")],
        model=FIXTURES / "model.json",
        clock=lambda: NOW_MS / 1000 + 3600 * hours,
        lake=lake,
    )


def _post(store: SqliteStore, events: list[dict[str, Any]]) -> None:
    """Through the collector's write path, as the edge's retry would send them."""
    client = TestClient(create_app(Service(store, SECRET, clock=lambda: NOW_MS / 1000)))
    for i in range(0, len(events), 200):
        body = encode_batch(events[i : i + 200])
        answer = client.post(
            "/v1/events", content=body, headers={SIGNATURE_HEADER: sign(body, SECRET)}
        )
        assert answer.status_code == 200, answer.text


def test_a_redelivery_after_the_hot_buffer_let_go_is_counted_once(
    tmp_path: Path, engine: Engine
) -> None:
    store = Recording(tmp_path / "events.db")
    simulate(store, engine, 600, seed=0)
    lake = LakeRounds(Lake(tmp_path / "lake"), DuckDBEngine())
    before = run_round(_job(tmp_path, store, lake, 1))
    assert before.rows > 0
    compact(lake.lake, LATER_MS)
    assert drop_hot(store.path, lake.lake, LATER_MS, 7) > 0
    again = [e for e in store.sent if e["type"] in ("exposure", "click")][:300]
    assert {e["type"] for e in again} == {"exposure", "click"}
    _post(store, again)
    rows = lake.lake.summary()["rows"]
    after = run_round(_job(tmp_path, store, lake, 2))
    assert lake.lake.summary()["rows"] > rows  # the copies are in the lake
    assert (after.rows, after.learnable) == (before.rows, before.learnable)
    assert after.model == before.model
    assert after.snapshot == before.snapshot
    # and once compaction has dropped the copies, still the same
    assert compact(lake.lake, LATER_MS).duplicates > 0
    last = run_round(_job(tmp_path, store, lake, 3))
    assert (last.rows, last.learnable, last.snapshot) == (
        before.rows,
        before.learnable,
        before.snapshot,
    )


def test_a_compaction_that_drops_copies_makes_the_next_round_recompute_their_hours(
    tmp_path: Path, slot_widths: dict[str, int]
) -> None:
    store = SqliteStore(tmp_path / "events.db")
    first = [exposure(n, visitor=f"v{n % 7}", ts=NOW_MS + 60_000 * n) for n in range(40)]
    store.append(first)
    lake = Lake(tmp_path / "lake")
    rounds = LakeRounds(lake, DuckDBEngine())
    right = rounds.round(slot_widths, store_path=store.path)
    assert right.rows == 40
    drop_hot(store.path, lake, LATER_MS, 7)
    store.append(first[:10])  # the copies land (the hot buffer no longer knows their ids)
    rounds.round(slot_widths, store_path=store.path)
    # an older round's state, before each id counted once: the copies' hours were inflated
    path = rounds.state_dir / "windows.parquet"
    kept = pq.read_table(path)
    hour = NOW_MS - NOW_MS % 3_600_000
    inflated = pc.if_else(
        pc.equal(kept.column("hour_ms"), hour), pc.multiply(kept.column("n"), 2), kept.column("n")
    )
    pq.write_table(
        kept.set_column(kept.column_names.index("n"), "n", pa.array(inflated, pa.int64())), path
    )
    assert rounds.round(slot_widths).rows > 40  # nothing new: the state is what it is
    assert compact(lake, LATER_MS).duplicates == 10
    healed = rounds.round(slot_widths)
    assert healed.recomputed is not None and healed.recomputed[0] <= hour
    assert healed.rows == 40
