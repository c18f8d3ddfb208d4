"""Results for the workspace: per-variant outcomes with intervals, and the holdout's lift.

The numbers are ``origin.report``'s: exposures joined with their outcomes
(``origin.training.training_rows``), Wilson score intervals for click-through and conversion
rates (``wilson``), and the personalized-over-holdout lift per visitor with its delta-method
interval (``visitors``, ``relative_lift``, ``METRICS``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from origin.registry import Registry
from origin.report import METRICS, Lift, relative_lift, visitors, wilson
from origin.store import EventStore
from origin.training import training_rows


@dataclass(frozen=True, slots=True)
class VariantResult:
    slot: str
    variant: str
    exposures: int
    clicks: int
    ctr: tuple[float, float, float]  # rate, low, high (95% Wilson)
    conversions: int
    conversion: tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Results:
    variants: list[VariantResult]
    lifts: list[tuple[str, Lift]]
    visitors: int
    holdout: int


def results(store: EventStore, registry: Registry) -> Results:
    counts: dict[tuple[str, str], list[int]] = {}
    for row in training_rows(store):
        c = counts.setdefault((row.slot, row.variant), [0, 0, 0])
        c[0] += 1
        c[1] += row.clicks > 0
        c[2] += row.conversions > 0
    found = []
    for (slot, variant), (n, clicks, conversions) in sorted(counts.items()):
        found.append(
            VariantResult(
                slot,
                variant,
                n,
                clicks,
                (clicks / n, *wilson(clicks, n)),
                conversions,
                (conversions / n, *wilson(conversions, n)),
            )
        )
    people = list(visitors(store, registry).values())
    treated = [v for v in people if not v.holdout]
    control = [v for v in people if v.holdout]
    lifts = [
        (
            name,
            relative_lift(
                np.asarray([f(v) for v in treated], dtype=float),
                np.asarray([f(v) for v in control], dtype=float),
            ),
        )
        for name, f in METRICS
    ]
    return Results(found, lifts, len(people), len(control))
