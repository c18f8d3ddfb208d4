"""Policies turn the eligible variants of a slot into choice probabilities.

Every policy returns a full probability vector over the slot's variants (0 for the ineligible);
``pick`` chooses by inverse CDF from a uniform draw, so the logged propensity is exactly the
probability the policy gave.

* Fixed split: ``p_i = w_i / sum_{j in E} w_j`` over the eligible set E.
* Thompson allocation: the origin publishes ``w_i = P(arm i is best)`` estimated from Beta
  posteriors (Thompson 1933; Chapelle & Li 2011); the edge renormalizes over E and mixes in a
  floor: ``p_i = (1 - f) * w_i / sum_E w + f / |E|``.
* Contextual linear: scores ``s_i = b_i + theta_i . x`` (ridge / Bayesian linear regression per
  arm, as in LinUCB, Li et al. 2010), explored by
  softmax ``p_i ∝ exp((s_i - max s) / tau)`` or inverse-gap weighting (SquareCB, Foster &
  Rakhlin 2020) ``p_i = 1 / (|E| + gamma_i (s_best - s_i))`` for i != best, the rest to the best;
  then the same floor mix. With ``igw`` every ``gamma_i`` is the authored ``gamma``; with
  ``squarecb`` the origin learns one per arm, ``gamma_i = c sqrt(n_i) / sigma`` (``n_i`` the arm's
  training rows, ``sigma`` the rewards' residual standard deviation; ``origin.learn``), so
  ``gamma_i (s_best - s_i) = c z_i`` with ``z_i`` the gap in standard errors of arm i's mean:
  the exploration does not depend on the reward's scale and shrinks like ``1 / sqrt(n_i)``
  as evidence grows. Probabilities are closed-form, so the logged propensity is exact.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate, compress
from math import exp, fsum, isfinite
from operator import mul
from typing import NamedTuple

from core.features import Featurizer, featurizer
from core.hashing import seeded_hash, unit_draw
from core.model import Exploration, FixedPolicy, LinearPolicy, Policy, ThompsonPolicy

Probabilities = list[float]


def pick(cumulative: Sequence[float], u: float) -> int:
    """Inverse CDF: the first index whose cumulative probability exceeds ``u``.

    Zero-probability arms have zero-width intervals and are never picked; if rounding left the
    total a hair under ``u``, the last arm with positive probability is.
    """
    i = bisect_right(cumulative, u)
    if i < len(cumulative) and cumulative[i] > (cumulative[i - 1] if i else 0.0):
        return i
    # rounding (or a non-finite entry, which comparisons never pass): the last arm with a
    # positive-width interval, so a zero-probability (ineligible) arm is never picked
    for last in range(len(cumulative) - 1, -1, -1):
        if cumulative[last] > (cumulative[last - 1] if last else 0.0):
            return last
    return 0


def renormalize(weights: Sequence[float], eligible: Sequence[int], count: int) -> Probabilities:
    """Weights restricted to the eligible set and scaled to sum to 1 (uniform if all are 0)."""
    probs = [0.0] * count
    total = fsum(max(weights[i], 0.0) for i in eligible)
    if total <= 0.0:
        for i in eligible:
            probs[i] = 1.0 / len(eligible)
        return probs
    for i in eligible:
        probs[i] = max(weights[i], 0.0) / total
    return probs


def with_floor(probs: Probabilities, eligible: Sequence[int], floor: float) -> Probabilities:
    """Mix a uniform share ``floor`` over the eligible set into ``probs``."""
    if floor <= 0.0 or not eligible:
        return probs
    share = floor / len(eligible)
    for i in eligible:
        probs[i] = (1.0 - floor) * probs[i] + share
    return probs


def softmax(
    scores: Sequence[float], eligible: Sequence[int], count: int, tau: float
) -> Probabilities:
    top = max([scores[i] for i in eligible])
    probs = [0.0] * count
    tau = max(tau, 1e-9)
    for i in eligible:
        probs[i] = exp((scores[i] - top) / tau)
    total = fsum(probs)
    if not total > 0.0 or not isfinite(total):  # a NaN or infinite score: no information
        return uniform(eligible, count)
    return [p / total for p in probs]


def inverse_gap(
    scores: Sequence[float], eligible: Sequence[int], count: int, gamma: float
) -> Probabilities:
    """Inverse-gap weighting with one ``gamma`` for every arm."""
    return inverse_gap_arms(scores, eligible, count, (gamma,) * count)


def inverse_gap_arms(
    scores: Sequence[float], eligible: Sequence[int], count: int, gammas: Sequence[float]
) -> Probabilities:
    """``p_i = 1 / (|E| + gamma_i (s_best - s_i))`` for eligible i != best, the rest to the best
    (the first of tied best scores). Every ``p_i <= 1 / |E|``, so the best keeps at least
    ``1 / |E|``; with every ``gamma_i = 0`` it is uniform over ``E``."""
    best = max(eligible, key=scores.__getitem__)
    k = len(eligible)
    top = scores[best]
    probs = [0.0] * count
    for i in eligible:
        if i != best:
            probs[i] = 1.0 / (k + gammas[i] * (top - scores[i]))
    probs[best] = 1.0 - fsum(probs)
    if not all(0.0 <= p <= 1.0 for p in probs):  # a NaN or infinite score: no information
        return uniform(eligible, count)
    return probs


def uniform(eligible: Sequence[int], count: int) -> Probabilities:
    """Equal probability over ``eligible``, zero elsewhere."""
    probs = [0.0] * count
    for i in eligible:
        probs[i] = 1.0 / len(eligible)
    return probs


class Scored(NamedTuple):  # built per request by contextual policies: a cheap tuple
    probabilities: tuple[float, ...]
    cumulative: tuple[float, ...]
    scores: tuple[float, ...] = ()
    fallback: bool = False  # a cold-start visitor got the population allocation


def scored(
    probs: Sequence[float], scores: tuple[float, ...] = (), fallback: bool = False
) -> Scored:
    return Scored(tuple(probs), tuple(accumulate(probs)), scores, fallback)


class PreparedPolicy:
    """A policy with everything the request path needs precomputed.

    ``draw`` gives the uniform number for (visitor, slot, epoch): learned policies use
    ``unit_draw``'s 2^-64 resolution, so small exploration probabilities are honoured exactly.
    """

    kind = ""
    features: tuple[str, ...] = ()  # the feature vector's entries (contextual policies)
    featurize: Featurizer | None = None  # computes it
    segments: tuple[str, ...] = ()  # audiences with their own allocation (Thompson)
    reads_history = False  # whether ``score`` looks at ``new_visitor`` (cold start)
    context_free = False  # probabilities depend on the eligible set alone

    def __init__(self, slot: str, epoch: int) -> None:
        self.slot = slot
        self.epoch = epoch
        # an attribute, not a method, so a subclass can set a callable object with no extra call
        self.draw: Callable[[str], float] = self._unit_draw

    def score(self, eligible: Sequence[int], x: Sequence[float], new_visitor: bool) -> Scored:
        raise NotImplementedError

    def _unit_draw(self, visitor_id: str) -> float:
        return unit_draw(visitor_id, self.slot, self.epoch)

    def for_segment(self, segment: str) -> PreparedPolicy:
        """The policy that allocates within ``segment`` (itself where segments do not apply)."""
        return self


class _ContextFree(PreparedPolicy):
    """Probabilities depend only on the eligible set: computed once per distinct set."""

    MAX_CACHED = 256
    context_free = True

    def __init__(self, slot: str, epoch: int, weights: tuple[float, ...], floor: float) -> None:
        super().__init__(slot, epoch)
        self.weights = weights
        self.floor = floor
        self.cache: dict[tuple[int, ...], Scored] = {}

    def score(self, eligible: Sequence[int], x: Sequence[float], new_visitor: bool) -> Scored:
        key = tuple(eligible)
        result = self.cache.get(key)
        if result is None:
            probs = renormalize(self.weights, eligible, len(self.weights))
            result = scored(with_floor(probs, eligible, self.floor))
            if len(self.cache) < self.MAX_CACHED:
                self.cache[key] = result
        return result


class PreparedFixed(_ContextFree):
    """Draws with GrowthBook's hash (version 2, the slot's seed): same buckets as its SDKs."""

    kind = "fixed"

    def __init__(self, policy: FixedPolicy, slot: str, epoch: int) -> None:
        super().__init__(slot, epoch, policy.weights, 0.0)
        self.seed = policy.seed or f"{slot}:{epoch}"
        self.draw = seeded_hash(self.seed)


class PreparedThompson(_ContextFree):
    kind = "thompson"

    def __init__(self, policy: ThompsonPolicy, slot: str, epoch: int) -> None:
        super().__init__(slot, epoch, policy.weights, policy.floor)
        self.segments = policy.segments
        self.by_segment: dict[str, PreparedPolicy] = {
            name: _ContextFree(slot, epoch, weights, policy.floor)
            for name, weights in zip(policy.segments, policy.segment_weights, strict=True)
        }

    def for_segment(self, segment: str) -> PreparedPolicy:
        return self.by_segment.get(segment, self) if segment else self


class PreparedLinear(PreparedPolicy):
    kind = "linear"

    def __init__(self, policy: LinearPolicy, slot: str, epoch: int) -> None:
        super().__init__(slot, epoch)
        self.features = policy.features
        self.featurize = featurizer(policy.features)
        self.biases = tuple(arm.bias for arm in policy.arms)
        self.thetas = tuple(arm.weights for arm in policy.arms)
        self.softmax = policy.exploration is Exploration.SOFTMAX
        self.temperature = policy.temperature
        self.gamma = policy.gamma
        count = len(policy.arms)
        # one gamma per arm: learned ones (squarecb, once the origin has data), else the authored
        learned = policy.exploration is Exploration.SQUARECB and len(policy.gammas) == count
        self.gammas = policy.gammas if learned else (policy.gamma,) * count
        self.floor = policy.floor
        self.cold_start = policy.cold_start
        self.reads_history = bool(policy.cold_start)

    def score(self, eligible: Sequence[int], x: Sequence[float], new_visitor: bool) -> Scored:
        """Scores ``b_i + theta_i . x``, each dot product correctly rounded (``fsum`` of the
        rounded products): the same bits on every Python, the edge (3.12/3.13 in Pyodide) and
        the origin (3.11+), so a score and the propensity logged from it replay exactly
        (``math.sumprod`` and a plain sum round differently). A correctly rounded sum does not
        depend on terms that are exactly zero, so only the products of the nonzero features are
        summed (``compress``): the same result for finite weights, for a fraction of the work.
        """
        count = len(self.biases)
        if new_visitor and self.cold_start:
            probs = renormalize(self.cold_start, eligible, count)
            return scored(with_floor(probs, eligible, self.floor), fallback=True)
        scores = [0.0] * count
        nonzero = tuple(compress(x, x))  # the sparse part of x, shared by every arm
        for i in eligible:
            scores[i] = self.biases[i] + fsum(map(mul, compress(self.thetas[i], x), nonzero))
        if self.softmax:
            probs = softmax(scores, eligible, count, self.temperature)
        else:
            probs = inverse_gap_arms(scores, eligible, count, self.gammas)
        return scored(with_floor(probs, eligible, self.floor), tuple(scores))


PREPARERS: dict[type, Callable[[Policy, str, int], PreparedPolicy]] = {
    FixedPolicy: PreparedFixed,  # type: ignore[dict-item]
    ThompsonPolicy: PreparedThompson,  # type: ignore[dict-item]
    LinearPolicy: PreparedLinear,  # type: ignore[dict-item]
}


def prepare(policy: Policy, slot: str = "", epoch: int = 0) -> PreparedPolicy:
    """The request-path form of a slot's policy (draws keyed by slot name and epoch)."""
    return PREPARERS[type(policy)](policy, slot, epoch)
