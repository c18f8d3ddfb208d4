"""The edge benchmark's workload, run unchanged under CPython and under Pyodide.

Pure Python over ``core`` and ``edge`` only (it is copied into Pyodide's FS next to the worker
bundle). ``MemoryIO`` is an ``edge.io.EdgeIO`` without network or HTML parsing: ``fetch`` returns
the fixture page at once and ``rewrite`` records the fills, so a request's time is the handler's
own CPU: cookie decode, decide, rewrite setup, cookie encode, event building and signing.
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import time
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from core.engine import Engine
from core.model import (
    Audience,
    Exploration,
    FixedPolicy,
    Granularity,
    LinearArm,
    LinearPolicy,
    Placement,
    Policy,
    Route,
    Rule,
    RuleAction,
    Signals,
    Site,
    Slot,
    Taxonomy,
    ThompsonPolicy,
    Variant,
)
from edge.config import load
from edge.handler import Stats, handle
from edge.io import Completion, Incoming, Page, Rewritten
from edge.snapshots import SnapshotCache

T = TypeVar("T")
NOW_MS = 1_790_000_000_000
ENV = {
    "ORIGIN_URL": "http://origin.bench",
    "COLLECTOR_URL": "http://collector.bench/v1/events",
    "EVENTS_SECRET": "bench-events-secret",
    "COOKIE_KEYS": "k1:bench-cookie-secret",
    "SNAPSHOT_TTL_SECONDS": "10",
}
USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari",
)
REFERERS = ("", "https://www.google.com/", "https://www.instagram.com/", "https://news.example/")
COUNTRIES = ("US", "DE", "GB", "FR", "US", "CA")
PAGE_FILES = {
    "/": "index.html",
    "/landing/outdoor": "landing-outdoor.html",
    "/landing/deals": "landing-deals.html",
}


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (all of MemoryIO's awaits complete at once)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("the coroutine suspended: MemoryIO should never wait")


def drain(io: MemoryIO) -> None:
    """Run what the request left for after its response (``EdgeIO.later``)."""
    while io.pending:
        run_sync(io.pending.pop(0))


def load_pages(folder: Path) -> dict[str, str]:
    return {path: (folder / name).read_text() for path, name in PAGE_FILES.items()}


class MemoryIO:
    """``EdgeIO`` in memory: instant fetch, fills recorded (every slot counts as found)."""

    def __init__(self, kv: Mapping[str, bytes | str], pages: Mapping[str, str]) -> None:
        self.kv = dict(kv)
        self.pages = dict(pages)
        self.now = NOW_MS
        self.fills = 0
        self.shipped = 0
        self.shipped_bytes = 0
        self.pending: list[Coroutine[Any, Any, None]] = []

    async def kv_get(self, key: str, binary: bool) -> bytes | str | None:
        value = self.kv.get(key)
        if value is None or binary == isinstance(value, bytes):
            return value
        return value.encode() if isinstance(value, str) else value.decode()

    async def fetch(self, url: str, headers: Mapping[str, str], timeout_ms: int = 0) -> Page:
        path = "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0]
        body = self.pages.get(path) or self.pages["/"]
        return Page(200, {"content-type": "text/html; charset=utf-8"}, body)

    async def forward(self, url: str, timeout_ms: int = 0, drop: Sequence[str] = ()) -> Page:
        return await self.fetch(url, {})

    async def rewrite(
        self,
        page: Page,
        fills: Mapping[str, tuple[str, str, str]],
        banner: str = "",
        appends: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Rewritten:
        self.fills += len(fills)
        return Rewritten(
            page, {slot for _html, _decision, slot in fills.values()}, Completion(True)
        )

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        self.pending.append(work)

    def ship(self, url: str, body: bytes, headers: Mapping[str, str], events: int = 0) -> None:
        self.shipped += 1
        self.shipped_bytes += len(body)

    async def send(self, url: str, body: bytes, headers: Mapping[str, str], events: int) -> None:
        self.ship(url, body, headers, events)

    def now_ms(self) -> int:
        return self.now

    def cpu_us(self) -> float:
        return time.perf_counter() * 1e6

    def token(self) -> str:
        return os.urandom(16).hex()


def _quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    n = len(ordered)
    return {
        "p50_ms": round(statistics.median(ordered), 4),
        "p90_ms": round(ordered[min(n - 1, int(n * 0.90))], 4),
        "p99_ms": round(ordered[min(n - 1, int(n * 0.99))], 4),
        "max_ms": round(ordered[-1], 4),
        "mean_ms": round(statistics.fmean(ordered), 4),
    }


def handler_timing(
    blob: bytes,
    snapshot_id: str,
    pages: Mapping[str, str],
    requests: int = 2000,
    warmup: int = 200,
    new_share: float = 0.3,
    seed: int = 7,
) -> dict[str, Any]:
    """Per-request time of ``edge.handler.handle`` for the fixture page, new and returning visitors.

    Returning visitors carry the cookie their previous response set; the clock moves 20 s per
    request, so a visitor's session (and its cached decisions) sometimes holds and sometimes not.
    """
    io = MemoryIO({"snap/current": snapshot_id, f"snap/{snapshot_id}": blob}, pages)
    config = load(lambda name: ENV.get(name, ""))
    cache = SnapshotCache(config.snapshot_ttl_ms)
    stats = Stats()
    rng = random.Random(seed)
    jar: list[str] = []
    times: dict[str, list[float]] = {"new": [], "returning": []}
    decide_ms: list[float] = []
    run_sync(handle(Incoming("GET", "https://shop.bench/", {}), io, cache, config, stats))
    for i in range(warmup + requests):
        returning = bool(jar) and rng.random() >= new_share
        slot = rng.randrange(len(jar)) if returning else -1
        headers = {
            "user-agent": rng.choice(USER_AGENTS),
            "accept": "text/html",
            "accept-language": "en-US,en;q=0.9",
        }
        referer = rng.choice(REFERERS)
        if referer:
            headers["referer"] = referer
        if returning:
            headers["cookie"] = f"ep={jar[slot]}; _ga=GA1.2.3.4"
        query = "?utm_source=newsletter" if rng.random() < 0.1 else ""
        request = Incoming("GET", f"https://shop.bench/{query}", headers, rng.choice(COUNTRIES))
        started = time.perf_counter()
        out = run_sync(handle(request, io, cache, config, stats))
        drain(io)
        elapsed = (time.perf_counter() - started) * 1000
        io.now += 20_000
        value = next((v for k, v in out.headers if k == "set-cookie"), "")
        value = value.split(";", 1)[0].split("=", 1)[1] if value else ""
        if returning:
            jar[slot] = value or jar[slot]
        elif value and len(jar) < 300:
            jar.append(value)
        if i >= warmup:
            times["returning" if returning else "new"].append(elapsed)
            timing = next(v for k, v in out.headers if k == "server-timing")
            decide_ms.append(float(timing.split("dur=")[1].split(";")[0]))
    if stats.errors:
        raise RuntimeError(f"the handler failed {stats.errors} times: {stats.last_error}")
    every = times["new"] + times["returning"]
    return {
        "requests": len(every),
        "new_visitors": len(times["new"]),
        "returning_visitors": len(times["returning"]),
        "all": _quantiles(every),
        "new": _quantiles(times["new"]),
        "returning": _quantiles(times["returning"]),
        "decide_part_p50_ms": round(statistics.median(decide_ms), 4),
        "fills_per_request": round(io.fills / (requests + warmup + 1), 2),
        "event_batches": io.shipped,
        "event_bytes_per_batch": round(io.shipped_bytes / max(io.shipped, 1)),
    }


def decode_timing(blob: bytes, repeat: int) -> dict[str, Any]:
    """``Engine.from_bytes`` (verify, unpack, build the model, prepare): first call and median."""
    samples = []
    engine = None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        engine = Engine.from_bytes(blob)
        samples.append((time.perf_counter() - started) * 1000)
    assert engine is not None
    return {
        "bytes": len(blob),
        "slots": len(engine.site.slots),
        "variants": sum(len(s.variants) for s in engine.site.slots),
        "first_ms": round(samples[0], 3),
        "median_ms": round(statistics.median(samples), 3),
        "repeat": repeat,
    }


LINEAR_FEATURES = (
    "bias",
    "new_visitor",
    "visits",
    "recency",
    "affinity:running",
    "affinity:hiking",
    "affinity:yoga",
    "device:mobile",
    "referrer:search",
    "referrer:social",
    "utm:newsletter",
    "stage:cart",
)
AUDIENCES = (
    Audience("mobile", {"device": "mobile"}),
    Audience("new", {"newVisitor": True}),
    Audience("returning", {"visits": {"$gte": 3}}),
    Audience("runners", {"affinity.running": {"$gte": 2}}),
    Audience("eu", {"country": {"$in": ["DE", "FR", "IT", "ES", "NL", "BE", "AT", "IE"]}}),
    Audience("carts", {"stage": {"$in": ["cart", "checkout"]}}),
    Audience("news", {"utmSource": {"$regexi": "^(newsletter|email)$"}}),
    Audience(
        "buyers",
        {"$or": [{"stage": "customer"}, {"flags": {"$elemMatch": {"$eq": "buyer"}}}]},
    ),
    Audience("staff", {"id": {"$inGroup": "staff_ids"}}),
    Audience("evening_mobile", {"$and": [{"device": "mobile"}, {"hour": {"$gte": 18}}]}),
)


def _policy(kind: int, n: int, rng: random.Random) -> Policy:
    if kind == 0:
        return FixedPolicy(tuple(1.0 / n for _ in range(n)), seed=f"seed-{rng.random():.6f}")
    if kind == 1:
        weights = [rng.random() for _ in range(n)]
        total = sum(weights)
        return ThompsonPolicy(tuple(w / total for w in weights), floor=0.05)
    arms = tuple(
        LinearArm(rng.uniform(-0.5, 0.5), tuple(rng.uniform(-1, 1) for _ in LINEAR_FEATURES))
        for _ in range(n)
    )
    return LinearPolicy(
        features=LINEAR_FEATURES,
        arms=arms,
        exploration=Exploration.SOFTMAX if rng.random() < 0.5 else Exploration.IGW,
        temperature=0.1,
        gamma=50.0,
        floor=0.02,
        cold_start=tuple(1.0 / n for _ in range(n)),
    )


def synthetic_site(slots: int = 20, variants: int = 50, seed: int = 1) -> Site:
    """``slots`` x ``variants`` (1,000 by default), the three policy kinds in turn, 3 rules each."""
    rng = random.Random(seed)
    built = []
    for s in range(slots):
        name = f"slot{s:02d}"
        items = tuple(
            Variant(
                f"{name}-v{v:02d}",
                f'<div class="v{v}"><h2>Variant {v} of {name}</h2><a href="/p/{v}">Shop</a></div>',
                Taxonomy(f"seg{v % 5}", "awareness", f"intent{v % 3}", f"theme{v % 7}"),
            )
            for v in range(variants)
        )
        ids = [item.id for item in items]
        audiences = rng.sample([a.name for a in AUDIENCES], 3)
        rules = (
            Rule(audiences[0], RuleAction.FORCE, (ids[0],)),
            Rule(audiences[1], RuleAction.RESTRICT, tuple(rng.sample(ids, 10))),
            Rule(audiences[2], RuleAction.EXCLUDE, tuple(rng.sample(ids, 5))),
        )
        built.append(
            Slot(
                name=name,
                granularity=Granularity.COMPONENT if s % 2 else Granularity.ELEMENT,
                default=ids[0],
                variants=items,
                policy=_policy(s % 3, variants, rng),
                rules=rules,
                placement=Placement.ASYNC if s % 5 == 4 else Placement.INLINE,
                selector=f'[data-edgepick-slot="{name}"]',
            )
        )
    return Site(
        name="synthetic",
        slots=tuple(built),
        audiences=AUDIENCES,
        saved_groups={"staff_ids": ("v-staff-1", "v-staff-2")},
        signals=Signals(
            categories=(Route("/c/running", "running"), Route("/c/hiking", "hiking")),
            funnel=(Route("/c/", "browse"), Route("/p/", "consider"), Route("/cart", "cart")),
            stages=("browse", "consider", "cart", "checkout", "customer"),
        ),
        epoch=1,
        holdout=0.05,
        origin="http://origin.bench",
    )
