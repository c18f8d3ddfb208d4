"""The edge's scaling curves, run unchanged under CPython and in Pyodide (bench/edge_scaling.py).

Pure (stdlib + ``core``). Each curve grows one dimension of a site and measures what the edge
pays for it: decoding + preparing the snapshot (once per snapshot per isolate), ``decide()`` for
a visitor (per request), and the cookie round trip (per request).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from core import cookie
from core.cookie import Keyring
from core.decide import decide
from core.engine import Engine
from core.features import RequestContext, VisitorState
from core.model import (
    Audience,
    FixedPolicy,
    Granularity,
    LinearArm,
    LinearPolicy,
    Rule,
    RuleAction,
    Site,
    Slot,
    Variant,
)
from core.snapshot import encode_snapshot

NOW = 1_790_000_000
CONTEXT = RequestContext(path="/", device="mobile", country="DE", referrer="search")
KEYS = Keyring("k1", {"k1": b"scaling-secret"})


def _variants(n: int, prefix: str = "v") -> tuple[Variant, ...]:
    return tuple(Variant(f"{prefix}{i}", f"<p>{prefix} {i}</p>") for i in range(n))


def site(variants: int = 10, slots: int = 1, rules: int = 0, features: int = 0) -> Site:
    """``slots`` slots of ``variants`` variants; the first has ``rules`` audience rules and, with
    ``features``, a linear policy over that many affinity features."""
    audiences = tuple(
        Audience(f"a{i}", {"country": {"$in": [f"C{i}", f"D{i}"]}, "visits": {"$gte": i % 5}})
        for i in range(rules)
    )
    made = []
    for s in range(slots):
        vs = _variants(variants)
        policy: Any = FixedPolicy((1 / variants,) * variants, f"seed-{s}")
        if s == 0 and features:
            names = tuple(f"affinity:c{i}" for i in range(features))
            arms = tuple(LinearArm(0.01 * a, (0.001,) * features) for a in range(variants))
            policy = LinearPolicy(names, arms)
        slot_rules = tuple(
            Rule(f"a{i}", RuleAction.FORCE, (f"v{i % variants}",))
            for i in range(rules if s == 0 else 0)
        )
        made.append(Slot(f"s{s}", Granularity.ELEMENT, "v0", vs, policy, slot_rules))
    return Site("scaling", tuple(made), audiences)


def _per_call_us(fn: Callable[[int], Any], count: int) -> float:
    fn(0)  # warm
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for i in range(count):
            fn(i)
        best = min(best, (time.perf_counter() - start) / count * 1e6)
    return round(best, 2)


def prepare(blob: bytes) -> dict[str, Any]:
    """Decode + prepare: milliseconds and the Python heap's peak (tracemalloc)."""
    tracemalloc.start()
    start = time.perf_counter()
    engine = Engine.from_bytes(blob)
    ms = (time.perf_counter() - start) * 1000
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"engine": engine, "prepare_ms": round(ms, 2), "python_peak_mb": round(peak / 1e6, 2)}


def decide_us(engine: Engine, count: int = 200) -> float:
    states = [VisitorState(f"{i:016x}", visits=1 + i % 9) for i in range(count)]
    slots = tuple(engine.slots)
    return _per_call_us(
        lambda i: decide(engine, states[i % count], CONTEXT, NOW, slots, nonce=f"{i:016x}"), count
    )


def curve(name: str, values: tuple[int, ...], make: Callable[[int], Site]) -> list[dict[str, Any]]:
    points = []
    for value in values:
        blob = encode_snapshot(make(value))
        prepared = prepare(blob)
        engine = prepared.pop("engine")
        points.append(
            {
                name: value,
                "snapshot_kb": round(len(blob) / 1024, 1),
                **prepared,
                "decide_us": decide_us(engine),
            }
        )
    return points


def cookie_curve(categories: tuple[int, ...]) -> list[dict[str, Any]]:
    """Cookie encode + decode per request with ``n`` affinity categories (the 1,024-byte budget
    keeps what fits: the encoder's cost is what grows)."""
    points = []
    for n in categories:
        state = VisitorState(
            "3f2a9c0d11e4b7a8",
            visits=4,
            page_views=12,
            affinity=tuple((f"category-{i}", 50.0 - i * 0.1) for i in range(n)),
            decisions=tuple(
                (f"slot{i}", "variant", f"abcdef0123456789-{i}", 0.25) for i in range(5)
            ),
        )
        value = cookie.encode(state, KEYS)

        def round_trip(_i: int, state: VisitorState = state) -> None:
            cookie.decode(cookie.encode(state, KEYS), KEYS, state)

        points.append(
            {
                "categories": n,
                "cookie_bytes": len(value),
                "encode_decode_us": _per_call_us(round_trip, 100),
            }
        )
    return points


def curves(quick: bool = False) -> dict[str, Any]:
    """Every curve; ``quick``: small sizes only (a smoke run)."""
    variants = (10, 100) if quick else (10, 100, 1000, 3000, 10000)
    slots = (1, 5) if quick else (1, 5, 20, 50)
    rules = (0, 10) if quick else (0, 10, 50, 200)
    features = (5, 20) if quick else (5, 20, 100, 300)
    categories = (5, 50) if quick else (5, 20, 50, 200, 1000)
    return {
        "variants_per_slot": curve("variants", variants, lambda n: site(variants=n)),
        "slots": curve("slots", slots, lambda n: site(slots=n)),
        "rules_on_a_slot": curve("rules", rules, lambda n: site(rules=n)),
        "linear_features": curve("features", features, lambda n: site(features=n)),
        "cookie_affinity_categories": cookie_curve(categories),
    }


def heap_after_prepare(variants: int) -> dict[str, Any]:
    """One snapshot of ``variants`` variants prepared in this (fresh) interpreter: for the
    wasm heap figure (the caller reads the heap's size before and after)."""
    engine = Engine.from_bytes(encode_snapshot(site(variants=variants)))
    return {"variants": variants, "slots": len(engine.slots)}
