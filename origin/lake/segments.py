"""The lake on disk: closed Parquet segments partitioned by hour, and the manifest naming them.

Layout under the lake's root::

    date=YYYY-MM-DD/hour=HH/seg-<seq>.parquet   one closed segment: events of that UTC hour
    _manifest.json                                segments (seq, path, rows, hour, ts range,
                                                  kind), the hot buffer's flush watermarks
    .lock                                         flock'ed by flush, compaction and rounds

A segment is written to a temporary name, fsynced and renamed, and only then named in the
manifest (itself replaced atomically), so a reader never sees half a segment and a crash leaves
at most an unnamed file (removed by the next writer). Segments are never modified: compaction
writes a new one and drops the old ones from the manifest (``origin.lake.retention``).
Sequence numbers only grow, so "segments after seq N" is what a round has not seen yet.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from origin.lake.schema import SCHEMA

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MANIFEST = "_manifest.json"


class NotALake(ValueError):
    """A path that is not (or no longer) a lake, or a segment that cannot be read."""


@dataclass(frozen=True, slots=True)
class Segment:
    seq: int
    path: str  # relative to the lake's root
    rows: int
    hour: int  # the partition's start, ms since 1970
    min_ts: int
    max_ts: int
    kind: str = "flush"  # "flush" (new events) or "compact" (the same events, rewritten)
    dropped: int = 0  # "compact": the duplicate copies it dropped (the rounds recompute them)


@dataclass
class Manifest:
    next_seq: int = 1
    segments: list[Segment] = field(default_factory=list)
    watermarks: dict[str, int] = field(default_factory=dict)  # hot-buffer table -> last rowid

    def to_json(self) -> bytes:
        data = {
            "version": 1,
            "next_seq": self.next_seq,
            "watermarks": self.watermarks,
            "segments": [asdict(s) for s in self.segments],
        }
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, text: bytes, where: Path) -> Manifest:
        try:
            data = json.loads(text)
            return cls(
                int(data["next_seq"]),
                [Segment(**s) for s in data["segments"]],
                {str(k): int(v) for k, v in data["watermarks"].items()},
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{where}: not a lake manifest ({exc})") from None


def partition(hour_ms: int) -> str:
    """``date=YYYY-MM-DD/hour=HH`` for the UTC hour starting at ``hour_ms``."""
    at = datetime.fromtimestamp(hour_ms / 1000, UTC)
    return f"date={at:%Y-%m-%d}/hour={at:%H}"


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class Lake:
    """A lake directory: its manifest, its segments, its lock."""

    def __init__(self, root: str | Path, create: bool = True) -> None:
        """``create``: make the directory if there is none (a lake starts empty); otherwise the
        directory must exist and hold a manifest (``NotALake``)."""
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise NotALake(f"{self.root} is a file, not a lake (a lake is a directory)")
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        elif not self.root.exists():
            raise NotALake(f"no lake at {self.root} (no such directory)")
        elif not (self.root / MANIFEST).exists():
            raise NotALake(
                f"{self.root} is not a lake (no {MANIFEST}; `edgepick lake flush` makes one)"
            )

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the lake (flush, compaction and rounds take turns)."""
        with open(self.root / ".lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def manifest(self) -> Manifest:
        path = self.root / MANIFEST
        return Manifest.from_json(path.read_bytes(), path) if path.exists() else Manifest()

    def save(self, manifest: Manifest) -> None:
        write_atomic(self.root / MANIFEST, manifest.to_json())

    def write_segments(self, manifest: Manifest, events: pa.Table, kind: str = "flush") -> None:
        """Write ``events`` as one segment per UTC hour (added to ``manifest``, not saved)."""
        if events.num_rows == 0:
            return
        events = events.sort_by([("ts", "ascending"), ("id", "ascending")])
        ts = events.column("ts").to_numpy()
        hours = ts - ts % HOUR_MS
        cuts = np.flatnonzero(np.diff(hours)) + 1
        for start, end in zip([0, *cuts.tolist()], [*cuts.tolist(), len(ts)], strict=True):
            part = events.slice(start, end - start)
            hour = int(hours[start])
            seq = manifest.next_seq
            manifest.next_seq += 1
            rel = f"{partition(hour)}/seg-{seq:08d}.parquet"
            self._write(self.root / rel, part)
            manifest.segments.append(
                Segment(seq, rel, part.num_rows, hour, int(ts[start]), int(ts[end - 1]), kind)
            )

    @staticmethod
    def _write(path: Path, part: pa.Table) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(part.cast(SCHEMA), tmp, compression="zstd", row_group_size=256_000)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def files(self, since_ms: int = 0, until_ms: int | None = None) -> list[str]:
        """Absolute paths of the segments whose hour overlaps ``[since_ms, until_ms)``."""
        until = until_ms if until_ms is not None else 2**62
        return [
            str(self.root / s.path)
            for s in self.manifest().segments
            if s.hour + HOUR_MS > since_ms and s.hour < until
        ]

    def after(self, seq: int) -> list[Segment]:
        """Segments of new events written after sequence number ``seq``."""
        return [s for s in self.manifest().segments if s.seq > seq and s.kind == "flush"]

    def read(
        self, paths: Sequence[str] | None = None, columns: Sequence[str] | None = None
    ) -> pa.Table:
        """Segments as one table (every segment by default)."""
        chosen = list(paths) if paths is not None else self.files()
        self.check(chosen)
        if not chosen:
            return SCHEMA.empty_table().select(list(columns or SCHEMA.names))
        tables = [pq.read_table(p, columns=list(columns) if columns else None) for p in chosen]
        return pa.concat_tables(tables)

    def summary(self, check: bool = False) -> dict[str, Any]:
        """Counts from the manifest; ``check``: also read every segment's Parquet footer and
        list those that are missing or unreadable (``corrupt``)."""
        manifest = self.manifest()
        found: dict[str, Any] = {
            "segments": len(manifest.segments),
            "rows": sum(s.rows for s in manifest.segments),
            "hours": len({s.hour for s in manifest.segments}),
            "last_seq": manifest.next_seq - 1,
            "watermarks": manifest.watermarks,
        }
        if check:
            found["corrupt"] = [
                {"path": s.path, "problem": problem}
                for s in manifest.segments
                if (problem := self.problem(s)) is not None
            ]
        return found

    def problem(self, segment: Segment) -> str | None:
        """What is wrong with a segment's file (missing, not Parquet, rows differ), or None."""
        path = self.root / segment.path
        try:
            rows = pq.read_metadata(path).num_rows
        except FileNotFoundError:
            return "missing"
        except (OSError, ValueError) as exc:  # pyarrow: ArrowInvalid is a ValueError
            return f"unreadable ({exc})"
        if rows != segment.rows:
            return f"{rows} rows, the manifest says {segment.rows}"
        return None

    def check(self, paths: Sequence[str]) -> None:
        """Raise ``NotALake`` naming the first of ``paths`` whose footer cannot be read."""
        for path in paths:
            try:
                pq.read_metadata(path)
            except (OSError, ValueError) as exc:
                raise NotALake(
                    f"lake segment {path} is unreadable ({type(exc).__name__}: {exc}); restore "
                    "it or remove it from _manifest.json"
                ) from None
