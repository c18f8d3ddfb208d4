"""Moving closed events from the SQLite hot buffer (``origin.store.SqliteStore``) to the lake.

The watermark is the SQLite ``rowid`` per table: rows are appended with growing rowids (SQLite
gives a new row ``max(rowid) + 1``; retention never deletes a table's last row, so that stays
true, see ``origin.lake.retention``). A flush reads the rows of each table with
``watermark < rowid <= max(rowid)`` (the max taken at the start: rows committed meanwhile go to
the next flush), in chunks, writes them as segments (one per UTC hour touched) and only then
saves the manifest with the new watermarks. A crash before that leaves the watermark where it
was: the next flush writes the same rows again under the sequence numbers the manifest did not
record, and the half-written files are never named in a manifest (readers ignore them).
Each event is in the hot buffer once (its id is the primary key), so it reaches the lake once.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from core.events import EXPOSURE, IDENTIFY, PAGE_VIEW, VITALS
from origin.lake.schema import SCHEMA, to_row
from origin.lake.segments import Lake

CHUNK = 200_000  # rows of one table per read (and per set of segments written)
NOT_MEASURED = -1  # origin.store writes an exposure's missing decision_us as -1


def _exposure(row: dict[str, Any]) -> dict[str, Any]:
    row["type"] = EXPOSURE
    row["features"] = json.loads(row["features"])
    if row.get("decision_us") == NOT_MEASURED:
        row.pop("decision_us")
    for name in ("eligible", "probs"):
        if row.get(name):
            row[name] = json.loads(row[name])
        else:
            row.pop(name, None)
    return row


def _identify(row: dict[str, Any]) -> dict[str, Any]:
    row["type"] = IDENTIFY
    row["flags"] = json.loads(row["flags"])
    return row


def _vitals(row: dict[str, Any]) -> dict[str, Any]:
    event = {k: v for k, v in row.items() if v is not None}
    event["type"] = VITALS
    event["decisions"] = json.loads(row["decisions"])
    return event


def _page_view(row: dict[str, Any]) -> dict[str, Any]:
    row["type"] = PAGE_VIEW
    return row


def _outcome(row: dict[str, Any]) -> dict[str, Any]:
    return row  # the table has the type column


def generic(table: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """How a row of a table not in ``TABLES`` (one the store grew later) becomes an event: its
    columns as they are, the type from its ``type`` column (else the table's name without its
    plural ``s``), NULLs left out, text holding a JSON array or object decoded."""
    kind = table[:-1] if table.endswith("s") else table

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        event: dict[str, Any] = {"type": kind}
        for key, value in row.items():
            if isinstance(value, str) and value[:1] in ("[", "{"):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            if value is not None:
                event[key] = value
        return event

    return convert


# the hot buffer's tables and how a row becomes its event again (origin.store's SCHEMA); other
# tables of the store are flushed too, through ``generic``
TABLES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "exposures": _exposure,
    "outcomes": _outcome,
    "identifies": _identify,
    "page_views": _page_view,
    "vitals": _vitals,
}


@dataclass(frozen=True, slots=True)
class Flushed:
    events: int
    segments: int
    watermarks: dict[str, int]


def tables(db: sqlite3.Connection) -> list[str]:
    """The store's event tables: those of ``TABLES`` first, then any other, by name."""
    names = [
        str(r[0])
        for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        if not str(r[0]).startswith("sqlite_")
    ]
    return [t for t in TABLES if t in names] + [t for t in names if t not in TABLES]


def _chunks(db: sqlite3.Connection, table: str, low: int, high: int) -> Iterator[pa.Table]:
    convert = TABLES.get(table) or generic(table)
    cursor = db.execute(
        f"SELECT * FROM {table} WHERE rowid > ? AND rowid <= ? ORDER BY rowid", (low, high)
    )
    while rows := cursor.fetchmany(CHUNK):
        events = [convert(dict(r)) for r in rows]
        yield pa.Table.from_pylist([to_row(e) for e in events], schema=SCHEMA)


def flush(store_path: str | Path, lake: Lake) -> Flushed:
    """Every hot-buffer row past the watermarks into the lake (see the module docstring)."""
    db = sqlite3.connect(str(Path(store_path)), isolation_level=None)
    db.execute("PRAGMA busy_timeout=10000")
    db.row_factory = sqlite3.Row
    try:
        with lake.locked():
            manifest = lake.manifest()
            before = len(manifest.segments)
            total = 0
            for table in tables(db):
                low = manifest.watermarks.get(table, 0)
                found = db.execute(f"SELECT MAX(rowid) FROM {table}").fetchone()[0]
                high = int(found or 0)
                if high <= low:
                    continue
                for chunk in _chunks(db, table, low, high):
                    lake.write_segments(manifest, chunk)
                    total += chunk.num_rows
                manifest.watermarks[table] = high
            lake.save(manifest)
            return Flushed(total, len(manifest.segments) - before, dict(manifest.watermarks))
    finally:
        db.close()
