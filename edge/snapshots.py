"""The isolate's snapshot cache: pointer ``snap/current`` re-read every TTL, blobs kept by id.

``snap/<id>`` is immutable, so a decoded and prepared engine is kept for as long as the isolate
lives. A missing pointer, a missing blob or bytes that are not a valid snapshot keep the last
good engine (and count the error); with none at all the caller fails open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from core.engine import Engine
from core.snapshot import SnapshotError

POINTER = "snap/current"
KvGet = Callable[[str, bool], Awaitable[bytes | str | None]]


@dataclass
class SnapshotCache:
    ttl_ms: int = 10_000
    engines: dict[str, Engine] = field(default_factory=dict)
    current: str = ""
    loaded_at_ms: int = 0
    checked_at_ms: int = -(10**15)
    errors: int = 0
    last_error: str = ""

    async def engine(self, kv_get: KvGet, now_ms: int) -> Engine | None:
        if now_ms - self.checked_at_ms >= self.ttl_ms:
            self.checked_at_ms = now_ms
            await self._refresh(kv_get, now_ms)
        return self.engines.get(self.current)

    async def _refresh(self, kv_get: KvGet, now_ms: int) -> None:
        pointer = await kv_get(POINTER, False)
        sid = pointer.decode("utf-8", "replace") if isinstance(pointer, bytes) else pointer
        sid = (sid or "").strip()
        if not sid:
            self._fail(f"{POINTER} is missing")
            return
        if sid in self.engines:
            if sid != self.current or not self.loaded_at_ms:  # a bundled one: confirmed now
                self.current, self.loaded_at_ms = sid, now_ms
            return
        blob = await kv_get(f"snap/{sid}", True)
        if not isinstance(blob, bytes):
            self._fail(f"snap/{sid} is missing")
            return
        try:
            engine = Engine.from_bytes(blob)
        except SnapshotError as exc:
            self._fail(f"snap/{sid}: {exc}")
            return
        except Exception as exc:  # preparing it failed (a bug, a limit): keep the last good one
            self._fail(f"snap/{sid}: could not be prepared ({type(exc).__name__}: {exc})"[:300])
            return
        if engine.snapshot_id != sid:
            self._fail(f"snap/{sid} holds snapshot {engine.snapshot_id}")
            return
        self.engines = (
            {self.current: self.engines[self.current]} if self.current in self.engines else {}
        )
        self.engines[sid] = engine
        self.current, self.loaded_at_ms = sid, now_ms

    def _fail(self, reason: str) -> None:
        self.errors += 1
        self.last_error = reason
