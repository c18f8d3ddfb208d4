"""The learner: partial aggregates -> the model JSON ``edgepick compile --model`` merges.

**Thompson allocation** (Thompson 1933; Chapelle & Li 2011). Arm k's engagement rate has the
posterior ``theta_k ~ Beta(a_k + s_k, b_k + n_k - s_k)`` (prior ``Beta(1, 1)`` for arms with
data). The allocation weight is the probability that k is best, by Monte Carlo with a seeded
generator:

    P(best = k) ~= (1/S) sum_{t=1..S} [argmax_j theta_j^(t) = k]

mixed with an exploration floor ``w_k = (1 - f) P(best = k) + f / K`` so no active arm starves
(the edge adds the slot's own floor on top).

**Priors for new variants** (``n_k = 0``): ``Beta(1 + m mu, 1 + m (1 - mu))`` with ``mu`` the
pooled rate of the taxonomy siblings (same theme or segment) that have data, else the slot's
population rate, and ``m`` the prior strength in pseudo-observations.

**Contextual linear** (ridge = the posterior mean of Bayesian linear regression with prior
``theta ~ N(theta_0, sigma^2 / lambda I)``; Bishop, PRML section 3.3; LinUCB, Li et al. 2010):
per arm, over ``z = [1, x]``,

    theta = (lambda I + Z^T Z)^-1 (lambda theta_0 + Z^T r)

with ``theta_0`` the population model (all arms' statistics summed, solved with
``theta_0 = 0``), so arms with little data shrink toward the population. ``z_0`` is the arm's
bias; when the policy has a ``bias`` feature it plays that role and the intercept is dropped.
New variants take the mean of their siblings' models, else the population model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.model import Lifecycle, LinearPolicy, Site, Slot, ThompsonPolicy, Variant
from origin.aggregates import Aggregates, ArmStats, segment_key


@dataclass(frozen=True, slots=True)
class LearnConfig:
    draws: int = 4000  # Monte Carlo samples for P(best)
    floor: float = 0.02  # exploration floor mixed into Thompson weights
    prior_strength: float = 10.0  # pseudo-observations behind a new variant's prior
    ridge: float = 1.0  # lambda
    seed: int = 0


def siblings(variant: Variant, variants: Sequence[Variant]) -> list[Variant]:
    """Other variants of the slot sharing the variant's (non-empty) theme or segment."""
    tags = variant.tags
    return [
        v
        for v in variants
        if v.id != variant.id
        and (
            (tags.theme and v.tags.theme == tags.theme)
            or (tags.segment and v.tags.segment == tags.segment)
        )
    ]


def beta_parameters(
    variants: Sequence[Variant], arms: Mapping[str, ArmStats], prior_strength: float
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior Beta parameters per variant (in order), with sibling/population priors."""
    total_n = sum(s.n for s in arms.values())
    population = sum(s.successes for s in arms.values()) / total_n if total_n else 0.5
    alpha, beta = [], []
    for v in variants:
        stats = arms.get(v.id)
        if stats is not None and stats.n > 0:
            alpha.append(1.0 + stats.successes)
            beta.append(1.0 + stats.failures)
            continue
        kin = [arms[s.id] for s in siblings(v, variants) if s.id in arms and arms[s.id].n > 0]
        kin_n = sum(s.n for s in kin)
        mu = sum(s.successes for s in kin) / kin_n if kin_n else population
        alpha.append(1.0 + prior_strength * mu)
        beta.append(1.0 + prior_strength * (1.0 - mu))
    return np.asarray(alpha), np.asarray(beta)


def prob_best(
    alpha: np.ndarray, beta: np.ndarray, rng: np.random.Generator, draws: int
) -> np.ndarray:
    """Monte Carlo ``P(arm k has the highest draw)`` for independent Beta arms."""
    if alpha.size == 0:
        return np.zeros(0)
    samples = rng.beta(alpha, beta, size=(draws, alpha.size))
    wins = np.bincount(samples.argmax(axis=1), minlength=alpha.size)
    result: np.ndarray = wins / draws
    return result


def thompson_weights(
    slot: Slot, arms: Mapping[str, ArmStats], config: LearnConfig, rng: np.random.Generator
) -> dict[str, float]:
    """Allocation weights by variant id: P(best) over the active variants, with the floor."""
    active = [v for v in slot.variants if v.lifecycle is Lifecycle.ACTIVE]
    weights = {v.id: 0.0 for v in slot.variants}
    if not active:
        return weights
    alpha, beta = beta_parameters(active, arms, config.prior_strength)
    p = prob_best(alpha, beta, rng, config.draws)
    p = (1.0 - config.floor) * p + config.floor / len(active)
    for v, w in zip(active, p, strict=True):
        weights[v.id] = round(float(w), 6)
    return weights


def ridge_solve(
    gram: np.ndarray, xty: np.ndarray, ridge: float, prior: np.ndarray | None = None
) -> np.ndarray:
    """``(lambda I + G)^-1 (lambda theta_0 + b)``; see the module docstring."""
    size = gram.shape[0]
    theta0 = np.zeros(size) if prior is None else prior
    result: np.ndarray = np.linalg.solve(ridge * np.eye(size) + gram, ridge * theta0 + xty)
    return result


@dataclass(frozen=True, slots=True)
class ArmModel:
    bias: float
    weights: dict[str, float]


def linear_models(
    slot: Slot, arms: Mapping[str, ArmStats], config: LearnConfig
) -> dict[str, ArmModel]:
    """Per-variant linear models for a linear slot (empty when no row has its width)."""
    policy = slot.policy
    assert isinstance(policy, LinearPolicy)
    features = list(policy.features)
    width = len(features)
    fitted = {vid: s for vid, s in arms.items() if s.m > 0 and s.width == width}
    if not fitted:
        return {}
    # the 'bias' feature duplicates the intercept column: solve without the intercept then
    keep = np.arange(1, width + 1) if "bias" in features else np.arange(width + 1)
    pooled_gram = sum((s.gram() for s in fitted.values()), np.zeros((width + 1, width + 1)))
    pooled_b = sum((s.xty for s in fitted.values()), np.zeros(width + 1))
    sub = np.ix_(keep, keep)
    population = ridge_solve(pooled_gram[sub], pooled_b[keep], config.ridge)
    thetas: dict[str, np.ndarray] = {
        vid: ridge_solve(s.gram()[sub], s.xty[keep], config.ridge, population)
        for vid, s in fitted.items()
    }
    for v in slot.variants:
        if v.id not in thetas:
            kin = [thetas[s.id] for s in siblings(v, slot.variants) if s.id in fitted]
            thetas[v.id] = np.mean(kin, axis=0) if kin else population
    out: dict[str, ArmModel] = {}
    for v in slot.variants:
        theta = thetas[v.id]
        if "bias" in features:
            bias, coefs = 0.0, theta
        else:
            bias, coefs = float(theta[0]), theta[1:]
        out[v.id] = ArmModel(
            round(float(bias), 6),
            {f: round(float(c), 6) for f, c in zip(features, coefs, strict=True)},
        )
    return out


def learn(
    site: Site, aggregates: Aggregates, config: LearnConfig = LearnConfig()
) -> dict[str, Any]:
    """The model JSON for ``site`` from ``aggregates`` (slots with no data are left out)."""
    config = config or LearnConfig()
    rng = np.random.default_rng(config.seed)
    slots: dict[str, Any] = {}
    for slot in site.slots:
        arms = aggregates.slot_arms(slot.name)
        if not any(s.n for s in arms.values()):
            continue
        if isinstance(slot.policy, ThompsonPolicy):
            slots[slot.name] = {"weights": thompson_weights(slot, arms, config, rng)}
            segments = {}
            for name in slot.policy.segments:  # one posterior per (slot, variant, segment)
                seg_arms = aggregates.slot_arms(segment_key(slot.name, name))
                if any(s.n for s in seg_arms.values()):
                    segments[name] = thompson_weights(slot, seg_arms, config, rng)
            if segments:
                slots[slot.name]["segments"] = segments
        elif isinstance(slot.policy, LinearPolicy):
            entry: dict[str, Any] = {"cold_start": thompson_weights(slot, arms, config, rng)}
            models = linear_models(slot, arms, config)
            if models:
                entry["arms"] = {
                    vid: {"bias": m.bias, "weights": m.weights} for vid, m in models.items()
                }
            slots[slot.name] = entry
    return {"slots": slots}


def overlay(base: Mapping[str, Any] | None, learned: Mapping[str, Any]) -> dict[str, Any]:
    """``learned`` over ``base`` slot by slot and key by key (a learned slot key wins)."""
    slots: dict[str, Any] = {k: dict(v) for k, v in ((base or {}).get("slots") or {}).items()}
    for name, entry in learned.get("slots", {}).items():
        slots.setdefault(name, {}).update(entry)
    return {"slots": slots}


def widths(site: Site) -> dict[str, int]:
    """Each slot's feature-vector width (0 for context-free policies)."""
    return {
        s.name: len(s.policy.features) if isinstance(s.policy, LinearPolicy) else 0
        for s in site.slots
    }
