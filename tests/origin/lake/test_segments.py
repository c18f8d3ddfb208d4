"""The lake's schema, flush from the hot buffer, compaction and hot-buffer retention."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from core.events import EVENT_TYPES, problem
from origin.lake.flush import flush
from origin.lake.retention import compact, drop_hot
from origin.lake.schema import SCHEMA, table, to_event, to_row
from origin.lake.segments import DAY_MS, HOUR_MS, Lake, partition
from origin.store import SqliteStore
from tests.origin.helpers import exposure, identify, outcome
from tests.origin.lake.conftest import START_MS


def _vitals() -> dict[str, Any]:
    return {
        "type": "vitals",
        "id": "v-1:vitals:p1",
        "ts": START_MS,
        "visitor": "v-1",
        "path": "/",
        "decisions": ["d1-0"],
        "lcp": 1200.0,
    }


def test_every_event_type_and_an_unknown_one_round_trip(traffic: list[dict[str, Any]]) -> None:
    samples = {e["type"]: e for e in traffic}
    samples["vitals"] = _vitals()
    assert {"exposure", "click", "conversion", "identify", "page_view"} <= set(samples)
    for event in samples.values():
        assert to_event(to_row(event)) == event, event["type"]
        assert problem(to_event(to_row(event))) is None
    # every type core.events defines (those added later too) and one it does not yet
    for kind in [*EVENT_TYPES, "scroll_depth"]:
        event = {"type": kind, "id": f"x-{kind}", "ts": START_MS, "visitor": "v", "user": "u"}
        event.update(value=12.5, currency="EUR", nested={"a": [1, "b"]}, decision=7)
        assert to_event(to_row(event)) == event, kind
    rows = table(samples.values())
    assert rows.schema == SCHEMA
    linear = max((e for e in traffic if e["type"] == "exposure"), key=lambda e: len(e["features"]))
    exposed = to_row(linear)
    assert exposed["width"] == len(linear["features"]) > 0
    assert "features" not in json.loads(exposed["payload"])  # typed, not twice


def test_a_row_without_the_common_fields_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"'e-9': no ts"):
        to_row({"type": "click", "id": "e-9", "visitor": "v"})


def test_flush_writes_each_event_once_into_its_hour(store: SqliteStore, tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    first = flush(store.path, lake)
    assert first.events == len(store.ids())
    read = lake.read()
    assert sorted(read.column("id").to_pylist()) == sorted(store.ids())
    for segment in lake.manifest().segments:  # every row sits in its hour's partition
        assert segment.path.startswith(partition(segment.hour) + "/seg-")
        ts = pq.read_table(lake.root / segment.path, columns=["ts"]).column("ts").to_pylist()
        assert all(segment.hour <= t < segment.hour + HOUR_MS for t in ts)
        assert (segment.min_ts, segment.max_ts) == (min(ts), max(ts))
    assert flush(store.path, lake).events == 0  # nothing past the watermark

    late = exposure(1, ts=START_MS - 3 * DAY_MS)  # a late event for an hour long flushed
    store.append([late, late, outcome("d1-0", ts=START_MS - 3 * DAY_MS + 5)])
    again = flush(store.path, lake)
    assert again.events == 2
    assert set(lake.read().column("id").to_pylist()) == store.ids()
    hour = late["ts"] - late["ts"] % HOUR_MS
    assert [s.hour for s in lake.after(lake.manifest().next_seq - 3)] == [hour, hour]


def test_compaction_merges_closed_days_and_drops_duplicate_ids(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "events.db")
    lake = Lake(tmp_path / "lake")
    for n in range(3):  # three flushes into the same hour: three segments
        store.append([exposure(n, ts=START_MS + n), identify(f"v{n}", "u", ts=START_MS + n)])
        flush(store.path, lake)
    today = START_MS + 5 * DAY_MS
    store.append([exposure(9, ts=today)])
    flush(store.path, lake)
    # a redelivery after retention dropped the id from the hot buffer lands twice in the lake
    copy = lake.read([str(lake.root / lake.manifest().segments[0].path)])
    lake_manifest = lake.manifest()
    lake.write_segments(lake_manifest, copy)
    lake.save(lake_manifest)
    (lake.root / "date=2026-09-21" / "hour=00").mkdir(parents=True)
    orphan = lake.root / "date=2026-09-21" / "hour=00" / "seg-99999999.parquet"
    orphan.write_bytes(b"crashed")
    assert len(lake.manifest().segments) == 8

    result = compact(lake, now_ms=today)
    assert (result.hours, result.duplicates, result.orphans) == (1, 1, 1)
    assert not orphan.exists()
    kinds = sorted(s.kind for s in lake.manifest().segments)
    assert kinds == ["compact", "flush"]  # the open day's segment stays as written
    ids = lake.read().column("id").to_pylist()
    assert sorted(ids) == sorted(store.ids())
    named = {lake.root / s.path for s in lake.manifest().segments}
    assert set(lake.root.glob("date=*/hour=*/*.parquet")) == named
    assert compact(lake, now_ms=today).hours == 0  # idempotent


def test_drop_hot_keeps_unflushed_and_last_rows_so_rowids_keep_growing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "events.db")
    lake = Lake(tmp_path / "lake")
    store.append([exposure(n, ts=START_MS + n) for n in range(5)])
    flush(store.path, lake)
    store.append([exposure(7, ts=START_MS + 7)])  # old but not in the lake yet
    now = START_MS + 10 * DAY_MS
    assert drop_hot(store.path, lake, now) == 5
    db = sqlite3.connect(store.path)
    assert [r[0] for r in db.execute("SELECT id FROM exposures")] == ["d7-0"]
    flush(store.path, lake)
    assert drop_hot(store.path, lake, now) == 0  # d7 is in the lake, but the table's last row
    store.append([exposure(8, ts=now)])
    assert flush(store.path, lake).events == 1  # a new row's rowid is above the watermark
    assert sorted(lake.read().column("id").to_pylist()) == [
        f"d{n}-0" for n in (0, 1, 2, 3, 4, 7, 8)
    ]
