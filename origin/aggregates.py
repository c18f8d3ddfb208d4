"""Mergeable partial aggregates: what the learner needs, summed per (slot, arm).

For each (slot, variant) over its training rows (x_i, r_i), with the augmented vector
``z_i = [1, x_i]``:

    n = #rows,  s = sum clip(r_i, 0, 1),  R = sum r_i,
    A = upper triangle of sum z_i z_i^T,  b = sum z_i r_i,  yty = sum r_i^2

(``yty`` gives the learner the residual sum of squares of a fitted model,
``yty - 2 theta . b + theta^T A theta``: the rewards' spread that ``squarecb`` exploration is
measured in.)

All of it is a sum, so partial aggregates (per window, per partition, per machine) merge by
addition, exactly and in any order; the ridge term is added only when solving (see
``origin.learn``). This is the shape DESIGN.md "Scale" asks for: the same sums are one
``GROUP BY slot, variant`` over the exposure table in SQL engines.
Rows whose feature vector does not have the slot's width (the snapshot changed its features)
count in ``n``/``s``/``R`` but not in the linear statistics (``m`` counts those that do).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from origin.training import TrainingRow

Key = tuple[str, str]  # (slot, variant)


def triangle_size(width: int) -> int:
    """Entries in the upper triangle of a (width+1) x (width+1) matrix (with the intercept)."""
    m = width + 1
    return m * (m + 1) // 2


@dataclass
class ArmStats:
    width: int
    n: int = 0
    successes: float = 0.0
    reward: float = 0.0
    m: int = 0
    xtx: np.ndarray = field(default_factory=lambda: np.zeros(0))
    xty: np.ndarray = field(default_factory=lambda: np.zeros(0))
    yty: float = 0.0  # sum of squared rewards over the m rows in the linear statistics

    def __post_init__(self) -> None:
        if self.xtx.size == 0:
            self.xtx = np.zeros(triangle_size(self.width))
        if self.xty.size == 0:
            self.xty = np.zeros(self.width + 1)

    def add(self, features: tuple[float, ...], reward: float) -> None:
        self.add_block([features], [reward])

    def add_block(self, features: list[tuple[float, ...]], rewards: list[float]) -> None:
        """Add many rows at once (vectorized: ``Z^T Z`` and ``Z^T r`` in one product each)."""
        r = np.asarray(rewards, dtype=float)
        self.n += len(r)
        self.successes += float(np.clip(r, 0.0, 1.0).sum())
        self.reward += float(r.sum())
        keep = [i for i, x in enumerate(features) if len(x) == self.width]
        if not keep:
            return
        x = np.asarray([features[i] for i in keep], dtype=float).reshape(len(keep), self.width)
        z = np.hstack((np.ones((len(keep), 1)), x))
        rows, cols = np.triu_indices(self.width + 1)
        self.m += len(keep)
        self.xtx += (z.T @ z)[rows, cols]
        self.xty += z.T @ r[keep]
        self.yty += float(r[keep] @ r[keep])

    def merged(self, other: ArmStats) -> ArmStats:
        if other.width != self.width:
            raise ValueError(f"cannot merge statistics of width {self.width} and {other.width}")
        return ArmStats(
            self.width,
            self.n + other.n,
            self.successes + other.successes,
            self.reward + other.reward,
            self.m + other.m,
            self.xtx + other.xtx,
            self.xty + other.xty,
            self.yty + other.yty,
        )

    def gram(self) -> np.ndarray:
        """The full symmetric ``sum z z^T`` from its upper triangle."""
        size = self.width + 1
        full = np.zeros((size, size))
        rows, cols = np.triu_indices(size)
        full[rows, cols] = self.xtx
        full[cols, rows] = self.xtx
        return full

    @property
    def failures(self) -> float:
        return self.n - self.successes

    def close_to(self, other: ArmStats, tol: float = 1e-9) -> bool:
        return (
            self.width == other.width
            and self.n == other.n
            and self.m == other.m
            and abs(self.successes - other.successes) <= tol * max(1.0, abs(self.successes))
            and abs(self.reward - other.reward) <= tol * max(1.0, abs(self.reward))
            and abs(self.yty - other.yty) <= tol * max(1.0, abs(self.yty))
            and bool(np.allclose(self.xtx, other.xtx, rtol=tol, atol=tol))
            and bool(np.allclose(self.xty, other.xty, rtol=tol, atol=tol))
        )


@dataclass
class Aggregates:
    """Per-(slot, variant) statistics; ``widths`` gives each slot's feature-vector width."""

    widths: dict[str, int]
    arms: dict[Key, ArmStats] = field(default_factory=dict)

    def stats(self, slot: str, variant: str) -> ArmStats:
        key = (slot, variant)
        found = self.arms.get(key)
        if found is None:
            found = self.arms[key] = ArmStats(self.widths.get(slot, 0))
        return found

    def add(self, row: TrainingRow) -> None:
        self.stats(row.slot, row.variant).add(row.features, row.reward)

    def merged(self, other: Aggregates) -> Aggregates:
        """The aggregate of both (addition); neither input is changed."""
        widths = {**self.widths, **other.widths}
        arms = dict(self.arms)
        for key, stats in other.arms.items():
            arms[key] = arms[key].merged(stats) if key in arms else stats
        return Aggregates(widths, arms)

    def close_to(self, other: Aggregates) -> bool:
        if set(self.arms) != set(other.arms):
            return False
        return all(self.arms[k].close_to(other.arms[k]) for k in self.arms)

    def slot_arms(self, slot: str) -> dict[str, ArmStats]:
        return {v: s for (name, v), s in self.arms.items() if name == slot}


BLOCK_ROWS = 8192


def segment_key(slot: str, segment: str) -> str:
    """Where a slot's per-segment statistics are kept in ``Aggregates`` (beside the slot's)."""
    return f"{slot}@{segment}"


class Summer:
    """Rows summed into ``Aggregates`` as they arrive (policy draws only, by default), folded
    in blocks of ``BLOCK_ROWS`` per arm: memory stays bounded however many rows stream by."""

    def __init__(self, widths: Mapping[str, int], learnable_only: bool = True) -> None:
        self.out = Aggregates(dict(widths))
        self.learnable_only = learnable_only
        self.grouped: dict[Key, tuple[list[tuple[float, ...]], list[float]]] = {}

    def add(self, row: TrainingRow) -> None:
        if self.learnable_only and not row.learnable:
            return
        xs, rs = self.grouped.setdefault((row.slot, row.variant), ([], []))
        xs.append(row.features)
        rs.append(row.reward)
        if len(xs) >= BLOCK_ROWS:
            self.out.stats(row.slot, row.variant).add_block(xs, rs)
            xs.clear()
            rs.clear()
        if row.segment:  # also counted in its segment's own posterior (Thompson slots)
            key = segment_key(row.slot, row.segment)
            self.out.stats(key, row.variant).add_block([row.features], [row.reward])

    def result(self) -> Aggregates:
        """The sums so far (the rows still in blocks folded in)."""
        for (slot, variant), (xs, rs) in self.grouped.items():
            if xs:
                self.out.stats(slot, variant).add_block(xs, rs)
                xs.clear()
                rs.clear()
        return self.out


def aggregate(
    rows: Iterable[TrainingRow], widths: Mapping[str, int], learnable_only: bool = True
) -> Aggregates:
    """Sum rows into per-(slot, variant) statistics (policy draws only, by default)."""
    summer = Summer(widths, learnable_only)
    for row in rows:
        summer.add(row)
    return summer.result()
