"""Synthetic shoppers for the propensity model's evaluation (``edgepick propensity evaluate``).

Each user has a latent purchase intent ``z ~ N(0, 1)`` that the origin never sees. Over the 28
days before a cutoff it drives what the store does log: sessions (``1 + Poisson(exp(0.5 +
0.3 z))``), page views per session (``1 + Poisson(max(0.5, 2 + z))``, growing session after
session for the keenest), product pages, add-to-cart (``sigmoid(z - 1)`` per session), site
searches, scroll depth (read through with ``sigmoid(z)``), newsletter sign-ups and earlier
purchases (``sigmoid(z - 2.5)``). Whether they buy within 7 days after the cutoff is drawn
with ``P = sigmoid(-2.5 + 1.2 z + 0.8 [cart])``: what a model can recover from the logged
behaviour is bounded by how much of ``z`` it reveals. The events are the real schema's
(``core.events``), written to a real store.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from origin.store import SqliteStore

CUTOFF_MS = 1_790_000_000_000
DAY_MS = 86_400_000
HORIZON_MS = 7 * DAY_MS
CATEGORIES = ("running", "hiking", "yoga")
PREFIX = {"running": "run", "hiking": "hike", "yoga": "yoga"}


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def shop(store: SqliteStore, users: int, seed: int = 0) -> int:
    """Write ``users`` synthetic shoppers' events into ``store``; returns how many bought."""
    rng = np.random.default_rng(seed)
    bought, pending = 0, []
    for i in range(users):
        events, label = _shopper(rng, i)
        pending += events
        bought += label
        if len(pending) > 20_000 or i == users - 1:
            store.append(pending)  # one transaction (and fsync) per 20,000 events
            pending = []
    return bought


def _shopper(rng: np.random.Generator, i: int) -> tuple[list[dict[str, Any]], int]:
    z = float(rng.normal())
    visitor, user = f"sv-{i:06d}", f"su-{i:06d}"
    category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
    sessions = min(12, 1 + int(rng.poisson(math.exp(0.5 + 0.3 * z))))
    starts = np.sort(rng.uniform(CUTOFF_MS - 28 * DAY_MS, CUTOFF_MS - 3_600_000, sessions))
    events: list[dict[str, Any]] = []
    n = 0

    def add(kind: str, ts: int, **fields: Any) -> None:
        nonlocal n
        n += 1
        events.append({"type": kind, "id": f"{visitor}:{kind}:{n}", "ts": ts, **fields})

    add("identify", int(starts[0]), visitor=visitor, user=user)
    carted = False
    for k, start in enumerate(starts):
        grow = max(0.0, z) * k / sessions
        views = 1 + int(rng.poisson(max(0.5, 2 + z + grow)))
        for v in range(views):
            ts = int(start) + v * 40_000
            path = f"/p/{PREFIX[category]}-{v}" if v % 2 else f"/c/{category}"
            add("page_view", ts, visitor=visitor, user="", path=path, category=category)
            depth = 100 if rng.random() < _sigmoid(z) else int(rng.integers(10, 60))
            add("signal", ts + 30_000, visitor=visitor, signal="scroll", path=path, depth=depth)
        end = int(start) + views * 40_000
        if rng.random() < _sigmoid(z - 1):
            carted = True
            add("signal", end, visitor=visitor, signal="product", path=f"/p/{PREFIX[category]}-1",
                name=f"{PREFIX[category]}-1", category=category, action="add")  # fmt: skip
            add("page_view", end + 1000, visitor=visitor, user="", path="/cart", category="")
        if rng.random() < 0.25:
            add("signal", end + 2000, visitor=visitor, signal="search", path="/", query=category)
        if rng.random() < 0.05 + 0.1 * _sigmoid(z):
            add("signal", end + 3000, visitor=visitor, signal="form", path="/", name="newsletter",
                action="submit")  # fmt: skip
    if rng.random() < _sigmoid(z - 2.5):
        add("purchase", int(starts[-1]) + 600_000, user=user, value=80.0, currency="EUR")
    label = int(rng.random() < _sigmoid(-2.5 + 1.2 * z + 0.8 * carted))
    if label:
        ts = CUTOFF_MS + int(rng.integers(1, HORIZON_MS))
        add("purchase", ts, user=user, visitor=visitor, value=60.0, currency="EUR")
    return events, label
