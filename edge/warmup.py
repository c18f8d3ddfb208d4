"""Run the request path once at import, in memory, on the bundled snapshot.

On Cloudflare a Python Worker's top-level code runs once at deploy and the runtime snapshots
the imported worker's memory; every new isolate starts from that snapshot. What the first real
request would otherwise do for the first time (grow the wasm heap, fill the interpreter's
inline caches and the engine's lazily built tables, the cookie and event codecs' first runs)
is done here instead, so a new isolate's first request costs about what the next ones do
(``bench/edge_vs_js.py``, cold start). Nothing leaves the isolate: the warm-up's IO is in memory,
its statistics, presence and precomputed tables are thrown away, and no JS is called.
"""

from __future__ import annotations

import traceback
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from core.engine import Engine
from edge import config as edge_config
from edge import precomputed
from edge.handler import Stats, handle
from edge.io import Completion, Incoming, Page, Rewritten
from edge.snapshots import SnapshotCache

WARM_ENV = {
    "ORIGIN_URL": "http://origin.warmup",
    "COLLECTOR_URL": "http://collector.warmup/v1/events",
    "EVENTS_SECRET": "warmup",
    "COOKIE_KEYS": "w:warmup-only",
    "SNAPSHOT_TTL_SECONDS": "3600",
}
VISITS = (  # a new visitor, then the same visitor back with the cookie it was given
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36", ""),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", "cookie"),
)


class _MemoryIO:
    """``edge.io.EdgeIO`` in memory: an empty HTML origin, a rewrite that finds every slot it
    is asked to fill, background work run to its end at once, nothing shipped."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    async def kv_get(self, key: str, binary: bool) -> bytes | str | None:
        return None

    async def fetch(self, url: str, headers: Mapping[str, str], timeout_ms: int) -> Page:
        return Page(200, {"content-type": "text/html; charset=utf-8"})

    async def forward(self, url: str, timeout_ms: int, drop: Sequence[str] = ()) -> Page:
        return Page(200, {"content-type": "text/html; charset=utf-8"})

    async def rewrite(
        self,
        page: Page,
        fills: Mapping[str, tuple[str, str, str]],
        banner: str = "",
        appends: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Rewritten:
        return Rewritten(page, {slot for _, _, slot in fills.values()}, Completion(True))

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        run(work)

    def ship(self, url: str, body: bytes, headers: Mapping[str, str], events: int) -> None:
        return None

    def now_ms(self) -> int:
        return self.now

    def cpu_us(self) -> float:
        return 0.0

    def token(self) -> str:
        return "0" * 32


def run(work: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never waits on anything outside this module to its end."""
    try:
        while True:
            work.send(None)
    except StopIteration as done:
        return done.value
    finally:
        work.close()


def warm(engine: Engine, now_ms: int = 1_767_225_600_000) -> int:
    """Serve each page the snapshot personalizes to a new and a returning visitor, in memory;
    returns how many requests ran (0 if anything failed: the warm-up never stops an import)."""
    try:
        config = edge_config.load(lambda name: WARM_ENV.get(name, ""))
        cache = SnapshotCache(config.snapshot_ttl_ms)
        cache.engines[engine.snapshot_id] = engine
        cache.current, cache.loaded_at_ms = engine.snapshot_id, now_ms
        io, served, errors = _MemoryIO(now_ms), 0, 0
        signals = engine.site.signals
        routes = (r.prefix for r in (*signals.categories, *signals.funnel))
        paths = {"/", *routes, *(p for s in engine.site.slots for p in s.paths)}
        for path in sorted(paths)[:8]:
            cookie = ""
            for agent, returning in VISITS:
                headers = {"user-agent": agent, "accept": "text/html", "sec-fetch-dest": "document"}
                if returning and cookie:
                    headers["cookie"] = cookie
                request = Incoming("GET", f"https://warmup.invalid{path}", headers, "US")
                stats = Stats()  # a path's first view is buffered: no event loop needed
                out = run(handle(request, io, cache, config, stats))
                served, errors = served + 1, errors + stats.errors
                for name, value in out.headers:
                    if name == "set-cookie":
                        cookie = value.split(";", 1)[0]
        return served if errors == 0 else 0
    except Exception:
        traceback.print_exc()
        return 0
    finally:
        precomputed.TABLES.by_snapshot.clear()  # the real first request loads its own
