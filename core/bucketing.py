"""Bucket ranges, variation choice and namespaces, as in GrowthBook's SDKs.

With weights w_i (summing to 1) and coverage c, variation i owns ``[W_i, W_i + c * w_i)`` where
``W_i = w_0 + ... + w_{i-1}``; a visitor whose hash ``n`` falls in no range is not in the
experiment. Weights that are the wrong length or do not sum to 1 +- 0.01 fall back to equal weights.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.hashing import gbhash

Range = tuple[float, float]


def equal_weights(count: int) -> list[float]:
    """``count`` equal weights summing to 1; empty for ``count < 1``."""
    if count < 1:
        return []
    return [1.0 / count] * count


def bucket_ranges(
    count: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[Range]:
    """The ``[start, end)`` range of each variation; see the module docstring."""
    coverage = min(max(coverage, 0.0), 1.0)
    chosen: Sequence[float] = weights if weights is not None else equal_weights(count)
    total = sum(chosen)
    if len(chosen) != count or not 0.99 <= total <= 1.01:
        chosen = equal_weights(count)
    ranges: list[Range] = []
    cumulative = 0.0
    for weight in chosen:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variation(n: float, ranges: Sequence[Range]) -> int:
    """The index of the range holding ``n``, or -1 when none does."""
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


def in_namespace(hash_value: str, namespace: tuple[str, float, float]) -> bool:
    """Whether the unit falls in ``[start, end)`` of the named namespace (hash version 1)."""
    name, start, end = namespace
    n = gbhash("__" + name, hash_value, 1)
    return n is not None and start <= n < end
