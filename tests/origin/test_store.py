from __future__ import annotations

from pathlib import Path
from typing import Any

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


def conversion(
    owner: str, oid: str, value: float, ts: int, visitor: str = "v-1", decision: str = ""
) -> dict[str, Any]:
    """A conversion as the edge builds it (``core.events.beacon_outcome``'s id scheme)."""
    return {
        "type": "conversion",
        "id": f"{owner}:conversion:{oid}",
        "ts": ts,
        "visitor": visitor,
        "decision": decision,
        "value": value,
    }


def test_repeat_conversions_are_kept_and_replays_are_not(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "e.db")
    store.append([exposure(1)])
    first = conversion("d1-0", "a1", 40.0, NOW_MS + 1000, decision="d1-0")
    second = conversion("d1-0", "b2", 75.0, NOW_MS + 2000, decision="d1-0")
    assert store.append([first, second]).accepted == 2
    assert (store.append([first, second]).duplicates) == 2  # a replay stores nothing twice
    (row,) = store.joined(30 * 60_000, 24 * 3_600_000)
    assert (row.conversions, row.value) == (2, 115.0)
    assert [o["value"] for o in store.decision_outcomes("d1-0")] == [40.0, 75.0]


def test_visitor_level_conversions_credit_each_exposure_in_the_window_once(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "e.db")
    hour = 3_600_000
    store.append(
        [
            exposure(1, slot="landing", ts=NOW_MS),  # page-level, an earlier page
            exposure(2, slot="hero", ts=NOW_MS + hour),
            exposure(3, slot="hero", ts=NOW_MS - 30 * hour),  # outside the 24 h window
            exposure(4, slot="hero", ts=NOW_MS, visitor="v-2"),  # someone else
            exposure(5, slot="recs", ts=NOW_MS + 3 * hour),  # after the purchase
            # one purchase: sent for the visitor and for d2-0 (the page's) with the same id
            conversion("v-1", "p1", 50.0, NOW_MS + 2 * hour),
            conversion("d2-0", "p1", 50.0, NOW_MS + 2 * hour + 5, decision="d2-0"),
            # a click on d4-0 from another visitor's cookie is not d4-0's
            {**outcome("d4-0", ts=NOW_MS + 1000), "visitor": "v-1"},
        ]
    )
    rows = {j.exposure["id"]: j for j in store.joined(30 * 60_000, 24 * hour)}
    assert {k: (r.conversions, r.value) for k, r in rows.items()} == {
        "d1-0": (1, 50.0),
        "d2-0": (1, 50.0),  # once, not twice
        "d3-0": (0, 0.0),
        "d4-0": (0, 0.0),
        "d5-0": (0, 0.0),
    }
    assert rows["d4-0"].clicks == 0
    assert [o["id"] for o in store.decision_outcomes("d1-0")] == ["v-1:conversion:p1"]
    assert len(store.decision_outcomes("d2-0")) == 1
    assert store.decision_outcomes("d1-0", window_ms=hour) == []  # 2 h after the exposure
    assert store.decision_outcomes("d3-0") == []  # 32 h: outside the default 24 h window


def test_vitals_are_stored_and_read_per_decision(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "e.db")
    page = {
        "type": "vitals",
        "id": "v-1:vitals:page1",
        "ts": NOW_MS + 500,
        "visitor": "v-1",
        "path": "/",
        "decisions": ["d1-0", "d2-0", "d9-0"],  # d9-0: no exposure stored
        "lcp": 900.0,
        "cls": 0.02,
    }
    store.append(
        [exposure(1, slot="hero", variant="hero-a"), exposure(2, slot="cta", reason="holdout")]
    )
    assert store.append([page, page]).accepted == 1
    assert store.count("vitals") == 1
    (back,) = store.vitals()
    assert back == {**page, "type": "vitals"}  # metrics not measured stay absent
    per = list(store.vitals_by_decision())
    assert [(r["slot"], r["variant"], r["reason"], r["lcp"]) for r in per] == [
        ("cta", "hl-classic", "holdout", 900.0),
        ("hero", "hero-a", "policy", 900.0),
    ]
    assert "inp" not in per[0]
    assert store.volume(NOW_MS - 1, 3_600_000)[("vitals", (NOW_MS // 3_600_000) * 3_600_000)] == 1
