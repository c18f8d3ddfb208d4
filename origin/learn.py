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
``theta_0 = 0``), so arms with little data shrink toward the population. ``lambda`` is
``LearnConfig.ridge`` for every coefficient; for ``squarecb`` slots it is one prior precision
per coefficient chosen by the evidence (``arm_shrinkage``: empirical Bayes with automatic
relevance determination), at least ``ridge`` (``empirical_bayes=False``: the fixed ridge).
``z_0`` is the arm's bias; when the policy has a ``bias`` feature it plays that role and the
intercept is dropped. New variants take the mean of their siblings' models, else the
population model.

**Exploration that decays** (``exploration = "squarecb"``): inverse-gap weighting (SquareCB,
Foster & Rakhlin 2020) at the edge, ``p_a = 1 / (|E| + gamma_a (s_best - s_a))``, with a gamma
per arm learned here:

    gamma_a = c sqrt(m_a) / sigma,    sigma^2 = sum_a RSS_a / sum_a m_a,
    RSS_a = sum r^2 - 2 theta_a . b_a + theta_a^T G_a theta_a

``m_a`` the arm's training rows, ``sigma`` the residual standard deviation of the fitted ridge
models (pooled over arms), ``c`` = ``LearnConfig.igw_scale``. Then ``gamma_a (s_best - s_a) =
c (s_best - s_a) / (sigma / sqrt(m_a))``: the gap in standard errors of the arm's mean. The
rule is invariant to the reward's scale (rewards times k: gaps and sigma times k) and an arm's
exploration shrinks like ``1 / sqrt(m_a)`` as its evidence grows; an arm with no data has
``gamma = 0`` (a ``1 / |E|`` share). When the rewards have not varied yet (``sigma = 0``) every
gamma is 0: uniform exploration. See docs/evaluation.md for the choice and its measurements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.model import Exploration, Lifecycle, LinearPolicy, Site, Slot, ThompsonPolicy, Variant
from origin.aggregates import Aggregates, ArmStats, segment_key

IGW_SCALE = 50.0
POOLED = 1e9  # the prior precision of a coefficient on which the arms show no deviation


@dataclass(frozen=True, slots=True)
class LearnConfig:
    draws: int = 4000  # Monte Carlo samples for P(best)
    floor: float = 0.02  # exploration floor mixed into Thompson weights
    prior_strength: float = 10.0  # pseudo-observations behind a new variant's prior
    ridge: float = 1.0  # lambda
    seed: int = 0
    igw_scale: float = IGW_SCALE  # c in squarecb's gamma_a = c sqrt(m_a) / sigma
    # squarecb slots: the arms' prior toward the population model chosen by the evidence
    # (else, and for softmax and igw slots: the fixed ridge)
    empirical_bayes: bool = True


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
    gram: np.ndarray, xty: np.ndarray, ridge: float | np.ndarray, prior: np.ndarray | None = None
) -> np.ndarray:
    """``(Lambda + G)^-1 (Lambda theta_0 + b)`` with ``Lambda = diag(ridge)`` (a number or one
    per coordinate); see the module docstring."""
    size = gram.shape[0]
    lam = np.broadcast_to(np.asarray(ridge, dtype=float), (size,))
    theta0 = np.zeros(size) if prior is None else prior
    result: np.ndarray = np.linalg.solve(np.diag(lam) + gram, lam * theta0 + xty)
    return result


def arm_shrinkage(
    grams: Sequence[np.ndarray],
    xtys: Sequence[np.ndarray],
    yty: float,
    rows: int,
    population: np.ndarray,
    ridge: float,
    iterations: int = 25,
) -> np.ndarray:
    """The prior precision (in pseudo-observations) of the arms' deviations from the population
    model, one per coefficient j, chosen by the evidence (empirical Bayes with automatic
    relevance determination: MacKay 1992; Tipping 2001; Bishop PRML sections 3.5.2, 7.2.1):

        gamma_j = sum_a (1 - lambda_j [(Lambda + G_a)^-1]_jj)      (well-determined parameters)
        tau_j^2 = sum_a (theta_aj - theta_0j)^2 / gamma_j,  lambda_j = sigma^2 / tau_j^2,
        sigma^2 = RSS / rows

    iterated to a fixed point, each ``lambda_j`` at least ``ridge``. A feature on which the arms
    really differ (who wants what) keeps a weak prior; one on which they do not (every feature
    when context does not matter) is pooled into the population model, so the arms' scores do
    not carry its noise. Ratios of variances: the choice does not depend on the reward's scale.
    A coefficient with no deviation at all gets ``POOLED`` (1e9 pseudo-observations)."""
    lam = np.full(population.shape[0], ridge)
    for _ in range(iterations):
        thetas = [ridge_solve(g, b, lam, population) for g, b in zip(grams, xtys, strict=True)]
        rss = yty - sum(
            2.0 * float(t @ b) - float(t @ g @ t)
            for t, g, b in zip(thetas, grams, xtys, strict=True)
        )
        sigma2 = max(rss, 0.0) / rows if rows else 0.0
        if not sigma2 > 0.0:
            return lam
        determined = sum(1.0 - lam * np.diag(np.linalg.inv(np.diag(lam) + g)) for g in grams)
        spread = sum((t - population) ** 2 for t in thetas)
        new = np.full_like(lam, POOLED)  # no deviation at all: pooled into the population model
        ok = (determined > 1e-12) & (spread > 0.0)
        new[ok] = np.clip(sigma2 * determined[ok] / spread[ok], ridge, POOLED)
        if np.allclose(new, lam, rtol=1e-4):
            return new
        lam = new
    return lam


@dataclass(frozen=True, slots=True)
class ArmModel:
    bias: float
    weights: dict[str, float]
    gamma: float = 0.0  # squarecb's gamma_a (0 for an arm with no data of its own)


def residual_sigma(
    fitted: Mapping[str, ArmStats], thetas: Mapping[str, np.ndarray], keep: np.ndarray
) -> float:
    """The pooled residual standard deviation of the fitted arm models (0 without variation)."""
    sub = np.ix_(keep, keep)
    rss = 0.0
    rows = 0
    for vid, s in fitted.items():
        theta = thetas[vid]
        gram, b = s.gram()[sub], s.xty[keep]
        rss += max(s.yty - 2.0 * float(theta @ b) + float(theta @ gram @ theta), 0.0)
        rows += s.m
    sigma = float(np.sqrt(rss / rows)) if rows else 0.0
    return sigma if np.isfinite(sigma) else 0.0


def squarecb_gammas(fitted: Mapping[str, ArmStats], sigma: float, scale: float) -> dict[str, float]:
    """``gamma_a = c sqrt(m_a) / sigma`` by variant id (all 0 when ``sigma`` is 0)."""
    if not sigma > 0.0:
        return {vid: 0.0 for vid in fitted}
    return {vid: scale * float(np.sqrt(s.m)) / sigma for vid, s in fitted.items()}


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
    lam: float | np.ndarray = config.ridge
    # squarecb slots only: a softmax's temperature is on the scores' scale, so shrinking the
    # arms' deviations would flatten its probabilities (measured: a lower CTR in the site loop);
    # softmax and igw slots keep the fixed ridge they were tuned with
    if config.empirical_bayes and policy.exploration is Exploration.SQUARECB:
        lam = arm_shrinkage(
            [s.gram()[sub] for s in fitted.values()],
            [s.xty[keep] for s in fitted.values()],
            sum(s.yty for s in fitted.values()),
            sum(s.m for s in fitted.values()),
            population,
            config.ridge,
        )
    thetas: dict[str, np.ndarray] = {
        vid: ridge_solve(s.gram()[sub], s.xty[keep], lam, population) for vid, s in fitted.items()
    }
    gammas = squarecb_gammas(fitted, residual_sigma(fitted, thetas, keep), config.igw_scale)
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
            float(f"{gammas.get(v.id, 0.0):.6g}"),
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
                if slot.policy.exploration is Exploration.SQUARECB:
                    entry["gammas"] = {vid: m.gamma for vid, m in models.items()}
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
