"""Config versions in the registry: the authored site config, versioned next to its snapshots.

Layout, inside the snapshot registry (``origin.registry``)::

    configs/<id>.json    one authored config, canonical JSON; id = sha256 of that text (20 hex)
    configs/<id>.toml    the TOML file it came from, when it came from one (push, seed): pull
                         gives developers back their comments and layout
    configs/HEAD         the version live now (published or rolled back to); drafts start here
    configs/log.jsonl    append-only: every move of HEAD (publish, rollback, seed) with who,
                         when, why, the parent version and the snapshot compiled from it

The snapshot registry keeps what the edge serves; this keeps what people wrote, so the two
histories are one: every published snapshot names the config version it was compiled from.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import tomllib
from collections.abc import Mapping
from typing import Any

from origin.registry import Registry, RegistryError, write_atomic


def canonical(config: Mapping[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def version_id(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(config).encode()).hexdigest()[:20]


class Versions:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.root = registry.root / "configs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.head_path = self.root / "HEAD"
        self.log_path = self.root / "log.jsonl"

    def put(self, config: Mapping[str, Any]) -> str:
        """Store a config (idempotent); its id."""
        vid = version_id(config)
        path = self.root / f"{vid}.json"
        if not path.exists():
            write_atomic(path, canonical(config).encode())
        return vid

    def keep_text(self, vid: str, text: str) -> None:
        """Keep the TOML text a version was read from (it must parse to that version)."""
        if version_id(tomllib.loads(text)) != vid:
            raise RegistryError(f"config version {vid}: the text is another config")
        write_atomic(self.root / f"{vid}.toml", text.encode())

    def text(self, vid: str) -> str | None:
        """The TOML text the version was read from, if it came from a file."""
        path = self.root / f"{vid}.toml"
        return path.read_text(encoding="utf-8") if path.exists() else None

    def get(self, vid: str) -> dict[str, Any]:
        path = self.root / f"{vid}.json"
        if not path.exists():
            raise RegistryError(f"config version {vid!r}: not in {self.root}")
        found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return found

    def head(self) -> str | None:
        if not self.head_path.exists():
            return None
        return self.head_path.read_text().strip() or None

    def head_config(self) -> dict[str, Any] | None:
        vid = self.head()
        return self.get(vid) if vid else None

    def move(
        self, vid: str, action: str, author: str, why: str, snapshot: str = ""
    ) -> dict[str, Any]:
        """Point HEAD at ``vid`` and log it (``action``: seed, publish, push, rollback)."""
        self.get(vid)  # must exist
        entry = {
            "ts": int(time.time()),
            "action": action,
            "id": vid,
            "parent": self.head() or "",
            "author": author,
            "why": why,
            "snapshot": snapshot,
        }
        write_atomic(self.head_path, vid.encode())
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return entry

    def log(self) -> list[dict[str, Any]]:
        """HEAD's moves, newest first."""
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in reversed(lines) if line.strip()]

    def of_snapshot(self, snapshot: str) -> str | None:
        """The config version a snapshot was compiled from (None: not published from here)."""
        return next((e["id"] for e in self.log() if e["snapshot"] == snapshot), None)
