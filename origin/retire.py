"""Automatic variant retirement: engagement confidently below the configured threshold.

A variant with ``min_engagement > 0`` is retired when, after at least ``min_samples``
exposures, the upper bound of its engagement posterior is below the threshold:

    q_{0.95}( Beta(1 + s, 1 + n - s) ) < min_engagement

(``s`` the engaged exposures, ``n`` all exposures; the quantile by seeded Monte Carlo). A slot
never loses its default or its last active variant this way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.model import Lifecycle, Site
from origin.aggregates import Aggregates


@dataclass(frozen=True, slots=True)
class RetireConfig:
    min_samples: int = 200
    level: float = 0.95
    draws: int = 20000
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Retirement:
    slot: str
    variant: str
    n: int
    rate: float
    upper: float
    threshold: float

    def describe(self) -> str:
        return (
            f"{self.slot}/{self.variant}: engagement {self.rate:.4f} over {self.n} exposures, "
            f"upper {self.upper:.4f} < min_engagement {self.threshold:.4f}"
        )


def beta_upper(successes: float, failures: float, level: float, draws: int, seed: int) -> float:
    """The ``level`` quantile of ``Beta(1 + successes, 1 + failures)`` by Monte Carlo."""
    rng = np.random.default_rng(seed)
    return float(np.quantile(rng.beta(1.0 + successes, 1.0 + failures, size=draws), level))


def retirements(
    site: Site, aggregates: Aggregates, config: RetireConfig = RetireConfig()
) -> list[Retirement]:
    """The active variants to retire now; see the module docstring."""
    out: list[Retirement] = []
    for slot in site.slots:
        active = {v.id for v in slot.variants if v.lifecycle is Lifecycle.ACTIVE}
        for variant in slot.variants:
            if variant.id not in active or variant.min_engagement <= 0.0:
                continue
            stats = aggregates.arms.get((slot.name, variant.id))
            if stats is None or stats.n < config.min_samples:
                continue
            upper = beta_upper(
                stats.successes, stats.failures, config.level, config.draws, config.seed
            )
            if upper >= variant.min_engagement:
                continue
            if variant.id == slot.default or len(active) <= 1:
                continue
            active.discard(variant.id)
            out.append(
                Retirement(
                    slot.name,
                    variant.id,
                    stats.n,
                    stats.successes / stats.n,
                    upper,
                    variant.min_engagement,
                )
            )
    return out
