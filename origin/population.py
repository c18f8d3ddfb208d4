"""Synthetic visitors with ground-truth preferences that depend on their features.

Used by ``make demo`` (visitors driven through the edge over HTTP) and by ``edgepick simulate``
(in process). A visitor has an interest (a store category), a device and an arrival channel;
it browses pages of its interest, so the edge's features (category affinity, device, referrer)
carry the signal, and it clicks a variant with a probability that depends on the match:

    P(click | visitor, variant) = base + lift * [variant's segment matches the interest]
                                       + device/stage bonuses (see ``click_probability``)

so a contextual policy can learn who wants what, and the oracle (the best variant per visitor)
is known exactly, which is what regret is measured against.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from core.model import Slot, Variant

INTERESTS = ("running", "hiking", "yoga", "deals", "kids")
INTEREST_PATHS = {
    "running": "/c/running",
    "hiking": "/c/hiking",
    "yoga": "/c/yoga",
    "deals": "/c/sale",
    "kids": "/c/kids",
}
# variant segment names that serve each interest
SEGMENTS = {
    "running": {"runners"},
    "hiking": {"hikers"},
    "yoga": {"yoga"},
    "deals": {"value"},
    "kids": {"families"},
}


@dataclass(frozen=True, slots=True)
class SimVisitor:
    visitor_id: str
    interest: str
    device: str  # desktop / mobile
    utm_source: str  # "" or "newsletter"
    in_cart: bool  # left a cart: reaches /cart before the home page

    @property
    def user_agent(self) -> str:
        if self.device == "mobile":
            return "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
        return "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"

    def browsing(self) -> list[str]:
        """Pages viewed before the home page (they build the visitor's affinity)."""
        pages = [INTEREST_PATHS[self.interest], INTEREST_PATHS[self.interest]]
        return [*pages, "/cart"] if self.in_cart else pages


def population(n: int, seed: int, prefix: str = "sim") -> list[SimVisitor]:
    rng = random.Random(seed)
    return [
        SimVisitor(
            visitor_id=f"{prefix}-{seed}-{i}",
            interest=rng.choices(INTERESTS, weights=(3, 3, 2, 2, 1))[0],
            device="mobile" if rng.random() < 0.45 else "desktop",
            utm_source="newsletter" if rng.random() < 0.15 else "",
            in_cart=rng.random() < 0.15,
        )
        for i in range(n)
    ]


BASE = 0.02
LIFT = 0.13


def click_probability(visitor: SimVisitor, variant: Variant) -> float:
    """The ground truth (see the module docstring)."""
    p = BASE
    if variant.tags.segment in SEGMENTS[visitor.interest]:
        p += LIFT
    if variant.tags.segment == "mobile" and visitor.device == "mobile":
        p += 0.05
    if variant.tags.segment == "cart-abandoners" and visitor.in_cart:
        p += 0.10
    return min(p, 1.0)


def best_probability(visitor: SimVisitor, slot: Slot, eligible: list[int]) -> float:
    """The oracle's click probability: the best eligible variant for this visitor."""
    return max(click_probability(visitor, slot.variants[i]) for i in eligible)
