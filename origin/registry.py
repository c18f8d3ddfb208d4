"""The snapshot registry: content-addressed blobs, the current pointer, the audit log.

Layout of the registry directory::

    snapshots/<id>.snap   one immutable blob per snapshot id (written once, atomically)
    CURRENT               the id the origin last published or rolled back to
    audit.jsonl           append-only: one JSON object per publish, retirement, rollback, ...
    overrides.json        retirements the origin applies before compiling (origin.overrides)
    models/<id>.json      the learned numbers a snapshot was compiled with
    configs/              config versions and HEAD, written by the workspace and
                          ``edgepick push`` (origin.workspace.versions)

Ids are content hashes of the compiled site (``core.snapshot``), so ids may be abbreviated to
any unique prefix on the command line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.model import Header
from core.snapshot import decode_header, decode_snapshot
from origin.overrides import Overrides


class RegistryError(ValueError):
    """A registry lookup or write that cannot be done; the message says why."""


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename: all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Registry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "snapshots"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.pointer = self.root / "CURRENT"
        self.audit_path = self.root / "audit.jsonl"

    @property
    def overrides(self) -> Overrides:
        """The overrides as on disk now (another process may have changed them)."""
        return Overrides(self.root / "overrides.json")

    # ------------------------------------------------------------ snapshots

    def add(self, blob: bytes) -> Header:
        """Store a snapshot (validated first); an id already stored keeps its first blob."""
        decode_snapshot(blob)  # raises SnapshotError naming the problem
        header, _ = decode_header(blob)
        path = self.blobs / f"{header.id}.snap"
        if not path.exists():
            write_atomic(path, blob)
        return header

    def ids(self) -> list[str]:
        return sorted(p.stem for p in self.blobs.glob("*.snap"))

    def resolve(self, prefix: str) -> str:
        """The full id for a unique id prefix; raises ``RegistryError`` otherwise."""
        prefix = prefix.strip()
        if not prefix:
            raise RegistryError("snapshot id: empty")
        matches = [i for i in self.ids() if i.startswith(prefix)]
        if not matches:
            raise RegistryError(f"snapshot {prefix!r}: not in the registry at {self.root}")
        if len(matches) > 1:
            raise RegistryError(f"snapshot {prefix!r}: ambiguous ({', '.join(matches[:5])})")
        return matches[0]

    def get(self, prefix: str) -> bytes:
        return (self.blobs / f"{self.resolve(prefix)}.snap").read_bytes()

    def header(self, prefix: str) -> Header:
        return decode_header(self.get(prefix))[0]

    def headers(self) -> list[Header]:
        """Every stored snapshot's header, newest first."""
        found = [decode_header((self.blobs / f"{i}.snap").read_bytes())[0] for i in self.ids()]
        return sorted(found, key=lambda h: (h.created, h.id), reverse=True)

    # ------------------------------------------------------------ pointer

    def current(self) -> str | None:
        if not self.pointer.exists():
            return None
        value = self.pointer.read_text().strip()
        return value or None

    def current_blob(self) -> bytes | None:
        sid = self.current()
        return self.get(sid) if sid else None

    def set_current(self, sid: str) -> None:
        if not (self.blobs / f"{sid}.snap").exists():
            raise RegistryError(f"snapshot {sid!r}: cannot point at a snapshot not in the registry")
        write_atomic(self.pointer, sid.encode())

    # ------------------------------------------------------------ audit log

    def audit(self, action: str, **fields: Any) -> dict[str, Any]:
        """Append one entry (fsynced) and return it."""
        entry = {"ts": int(time.time()), "action": action, **fields}
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.audit_path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        return entry

    def audit_log(self) -> Iterator[dict[str, Any]]:
        if not self.audit_path.exists():
            return
        with self.audit_path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        yield {"action": "unreadable", "line": n}
