from __future__ import annotations

from pathlib import Path

from origin.store import SqliteStore
from tests.origin.helpers import NOW_MS, exposure, identify, outcome


def test_append_is_idempotent_by_event_id(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "e.db")
    batch = [exposure(1), exposure(2), outcome("d1-0"), identify("v-1", "u-1")]
    first = store.append(batch)
    assert (first.accepted, first.duplicates) == (4, 0)
    again = store.append([*batch, exposure(3), exposure(3)])
    assert (again.accepted, again.duplicates) == (1, 5)
    assert store.count("exposure") == 3 and store.count("click") == 1
    assert store.count("identify") == 1


def test_store_is_durable_mode_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    store = SqliteStore(path)
    journal = store._db.execute("PRAGMA journal_mode").fetchone()[0]
    sync = store._db.execute("PRAGMA synchronous").fetchone()[0]
    assert (journal, sync) == ("wal", 2)  # 2 = FULL
    store.append([exposure(1, features=[1.0, 0.5])])
    store.close()
    reopened = SqliteStore(path)
    (event,) = list(reopened.exposures())
    assert event["features"] == [1.0, 0.5] and event["id"] == "d1-0"


def test_joined_counts_outcomes_inside_their_windows(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "e.db")
    minute = 60_000
    store.append(
        [
            exposure(1),
            exposure(2),
            outcome("d1-0", ts=NOW_MS + 5 * minute),
            {**outcome("d1-0", ts=NOW_MS + 50 * minute), "id": "late-click"},
            outcome("d2-0", "conversion", ts=NOW_MS + 600 * minute, value=20.0),
            {**outcome("d2-0", "conversion", NOW_MS + 2000 * minute, 99.0), "id": "too-late"},
        ]
    )
    rows = {j.exposure["id"]: j for j in store.joined(30 * minute, 24 * 60 * minute)}
    assert (rows["d1-0"].clicks, rows["d1-0"].conversions) == (1, 0)
    assert (rows["d2-0"].clicks, rows["d2-0"].conversions, rows["d2-0"].value) == (0, 1, 20.0)


def test_volume_buckets_by_type(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "e.db")
    hour = 3_600_000
    base = (NOW_MS // hour) * hour
    store.append([exposure(i, ts=base + i) for i in range(3)] + [outcome("d0-0", ts=base + hour)])
    volume = store.volume(base - hour, hour)
    assert volume[("exposure", base)] == 3 and volume[("click", base + hour)] == 1
