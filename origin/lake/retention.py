"""Retention and compaction: the stated policy, and the two operations that carry it out.

**Compaction.** A UTC day is *closed* once ``CLOSE_AFTER_MS`` (2 days: the longest attribution
window, 24 h, plus a day of slack for late deliveries) have passed since its end. Each hour of a
closed day whose partition holds more than one segment is rewritten as one segment (sorted by
time and id, duplicate event ids dropped: the first copy stays), recorded as ``kind="compact"``
(rounds do not take a rewrite for new events; one that dropped copies, ``dropped > 0``, makes
the next round recompute the hours those copies touched), and the old segments leave the
manifest, then the disk. An event arriving later than that for a closed day still lands in
the day (a new segment), and the next compaction folds it in. Files no manifest names (a
crashed writer's) are removed too.

**Hot buffer.** Rows of the SQLite store that are in the lake (``rowid`` at or below the lake's
watermark) and older than ``HOT_DAYS`` (7) days are deleted from it, except each table's last
row (its ``rowid`` keeps new rows' rowids above the watermark). While an event id is in the hot
buffer a redelivery of it is a duplicate; a redelivery after that lands again (compaction drops
the copy within its day). What reads the hot buffer directly (``edgepick inspect``, stitched
profiles, the monitors) sees the last ``HOT_DAYS`` days.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from origin.lake.flush import tables
from origin.lake.segments import DAY_MS, Lake, Segment

CLOSE_AFTER_MS = 2 * DAY_MS
HOT_DAYS = 7


@dataclass(frozen=True, slots=True)
class Compacted:
    hours: int  # partitions rewritten
    segments_before: int
    segments_after: int
    duplicates: int  # event ids found twice and dropped
    orphans: int  # unnamed files removed


def _dedupe(events: pa.Table) -> tuple[pa.Table, int]:
    """The events sorted by (ts, id), each id once (its earliest copy)."""
    if len(pc.unique(events.column("id"))) < events.num_rows:
        events = events.sort_by([("id", "ascending"), ("ts", "ascending")])
        ids = events.column("id").combine_chunks()
        same = pc.equal(ids.slice(1), ids.slice(0, events.num_rows - 1))
        keep = pa.concat_arrays([pa.array([True]), pc.invert(same)])
        found = events.num_rows
        events = events.filter(keep)
        found -= events.num_rows
    else:
        found = 0
    return events.sort_by([("ts", "ascending"), ("id", "ascending")]), found


def compact(lake: Lake, now_ms: int, close_after_ms: int = CLOSE_AFTER_MS) -> Compacted:
    """Compact every closed day's hours that hold several segments (see the module docstring)."""
    with lake.locked():
        manifest = lake.manifest()
        before = len(manifest.segments)
        by_hour: dict[int, list[Segment]] = {}
        for segment in manifest.segments:
            by_hour.setdefault(segment.hour, []).append(segment)
        rewritten, duplicates, dropped = 0, 0, []
        for hour, segments in sorted(by_hour.items()):
            day_end = hour - hour % DAY_MS + DAY_MS
            if len(segments) < 2 or day_end + close_after_ms > now_ms:
                continue
            events, found = _dedupe(lake.read([str(lake.root / s.path) for s in segments]))
            duplicates += found
            kept = len(manifest.segments)
            lake.write_segments(manifest, events, kind="compact")
            if found:  # the rounds recompute the hours whose copies went (origin.lake.rounds)
                manifest.segments[kept:] = [
                    replace(s, dropped=found) for s in manifest.segments[kept:]
                ]
            manifest.segments = [s for s in manifest.segments if s not in segments]
            dropped.extend(segments)
            rewritten += 1
        lake.save(manifest)
        for segment in dropped:
            (lake.root / segment.path).unlink(missing_ok=True)
        named = {lake.root / s.path for s in manifest.segments}
        orphans = [p for p in lake.root.glob("date=*/hour=*/*.parquet") if p not in named]
        orphans += list(lake.root.glob("date=*/hour=*/.*.tmp"))
        for path in orphans:
            path.unlink(missing_ok=True)
        return Compacted(rewritten, before, len(manifest.segments), duplicates, len(orphans))


def drop_hot(store_path: str | Path, lake: Lake, now_ms: int, days: float = HOT_DAYS) -> int:
    """Delete hot-buffer rows already in the lake and older than ``days`` (module docstring);
    returns how many rows went."""
    cutoff = now_ms - int(days * DAY_MS)
    marks = lake.manifest().watermarks
    db = sqlite3.connect(str(Path(store_path)), isolation_level=None)
    db.execute("PRAGMA busy_timeout=10000")
    dropped = 0
    try:
        for table in tables(db):
            mark = marks.get(table, 0)
            cursor = db.execute(
                f"DELETE FROM {table} WHERE rowid <= ? AND ts < ? "
                f"AND rowid < (SELECT MAX(rowid) FROM {table})",
                (mark, cutoff),
            )
            dropped += cursor.rowcount
    finally:
        db.close()
    return dropped
