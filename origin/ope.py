"""Off-policy evaluation: what a *target* policy would have earned, from logs of another policy.

The logs are rows ``(x_i, a_i, r_i, p_i)``: the context, the action the logging policy ``pi_0``
took, its reward, and the exact propensity ``p_i = pi_0(a_i | x_i)`` (edgepick logs it with
every exposure). For a target policy ``pi`` write ``w_i = pi(a_i | x_i) / p_i``. The value to
estimate is ``V(pi) = E_x E_{a ~ pi(.|x)} [r(x, a)]``.

**IPS** (inverse propensity scoring; Horvitz & Thompson 1952, "A generalization of sampling
without replacement from a finite universe", JASA 47):

    V_IPS = (1/n) sum_i w_i r_i

unbiased whenever ``pi_0(a|x) > 0`` wherever ``pi(a|x) > 0``; its variance grows with the
weights.

**SNIPS** (self-normalized IPS; Swaminathan & Joachims 2015, "The self-normalized estimator for
counterfactual learning", NeurIPS):

    V_SNIPS = sum_i w_i r_i / sum_i w_i

slightly biased (consistent), usually much lower variance: it uses ``E[w] = 1`` as a control
variate, and it is invariant to rescaling all the weights.

**DR** (doubly robust; Dudik, Langford & Li 2011, "Doubly robust policy evaluation and
learning", ICML): with a reward model ``q(x, a)`` (the direct method),

    V_DR = (1/n) sum_i [ sum_a pi(a | x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i)) ]

unbiased if the propensities are right (whatever ``q``), and lower variance than IPS when ``q``
is good. ``q`` here is per-arm ridge regression (:func:`ridge_reward_model`), cross-fitted:
rows in fold k are predicted by a model fitted on the other folds (as in double machine
learning, Chernozhukov et al. 2018), so a row's own reward never enters its prediction.

**Intervals**: nonparametric bootstrap (Efron 1979), percentile method. Every estimator above
is a ratio of per-row sums ``sum_i u_i / sum_i v_i`` (``v_i = 1`` for IPS and DR, ``v_i = w_i``
for SNIPS); rows are resampled with replacement ``B`` times with a seeded generator and the
``(1 - level)/2`` and ``(1 + level)/2`` quantiles of the resampled estimates are reported.
The DR reward model is fitted once (not refitted per resample), so its interval treats ``q`` as
fixed.

**Effective sample size** (Kish): ``ESS = (sum w)^2 / sum w^2``, the number of on-policy rows the
weighted sample is worth; small ESS means wide intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from origin.learn import ridge_solve

ESTIMATORS = ("ips", "snips", "dr")


@dataclass(frozen=True, slots=True)
class Estimate:
    """One estimator's value with its bootstrap interval."""

    estimator: str
    value: float
    low: float
    high: float
    n: int
    ess: float
    level: float = 0.95

    @property
    def width(self) -> float:
        return self.high - self.low

    def covers(self, truth: float) -> bool:
        return self.low <= truth <= self.high

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "width": self.width}


@dataclass(frozen=True, slots=True)
class Logged:
    """Logged bandit feedback: actions (0..K-1), rewards, logging propensities, contexts."""

    actions: np.ndarray  # int, shape (n,)
    rewards: np.ndarray  # float, shape (n,)
    propensities: np.ndarray  # float in (0, 1], shape (n,)
    contexts: np.ndarray  # float, shape (n, d); d may be 0
    arms: int

    def __post_init__(self) -> None:
        n = len(self.actions)
        if not (len(self.rewards) == len(self.propensities) == len(self.contexts) == n):
            raise ValueError("actions, rewards, propensities and contexts need the same length")
        if n and (np.any(self.propensities <= 0) or np.any(self.propensities > 1)):
            raise ValueError("propensities must be in (0, 1]")

    @property
    def n(self) -> int:
        return len(self.actions)

    def subset(self, rows: np.ndarray) -> Logged:
        return Logged(
            self.actions[rows],
            self.rewards[rows],
            self.propensities[rows],
            self.contexts[rows],
            self.arms,
        )


def ess(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2``."""
    squares = float(np.sum(weights**2))
    return float(np.sum(weights)) ** 2 / squares if squares > 0 else 0.0


def bootstrap_ratio(
    num: np.ndarray,
    den: np.ndarray,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    chunk: int = 200,
) -> tuple[float, float]:
    """Percentile interval of ``sum(num[idx]) / sum(den[idx])`` over bootstrap resamples."""
    n = len(num)
    if n == 0 or resamples <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    stats: list[np.ndarray] = []
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        idx = rng.integers(0, n, size=(size, n))
        top = num[idx].sum(axis=1)
        bottom = den[idx].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            stats.append(np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), 0.0))
        done += size
    values = np.concatenate(stats)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _estimate(
    name: str,
    num: np.ndarray,
    den: np.ndarray,
    weights: np.ndarray,
    resamples: int,
    level: float,
    seed: int,
) -> Estimate:
    total = float(den.sum())
    value = float(num.sum()) / total if total > 0 else 0.0
    low, high = bootstrap_ratio(num, den, resamples=resamples, level=level, seed=seed)
    return Estimate(name, value, low, high, len(num), ess(weights), level)


def importance_weights(logged: Logged, target: np.ndarray) -> np.ndarray:
    """``w_i = pi(a_i | x_i) / p_i`` for a target distribution ``target`` of shape (n, K)."""
    chosen = target[np.arange(logged.n), logged.actions]
    result: np.ndarray = chosen / logged.propensities
    return result


def ips(
    logged: Logged, target: np.ndarray, *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> Estimate:
    """``V_IPS = (1/n) sum_i w_i r_i`` (Horvitz & Thompson 1952); see the module docstring."""
    w = importance_weights(logged, target)
    return _estimate("ips", w * logged.rewards, np.ones(logged.n), w, resamples, level, seed)


def snips(
    logged: Logged, target: np.ndarray, *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> Estimate:
    """``V_SNIPS = sum_i w_i r_i / sum_i w_i`` (Swaminathan & Joachims 2015)."""
    w = importance_weights(logged, target)
    return _estimate("snips", w * logged.rewards, w, w, resamples, level, seed)


def dr(
    logged: Logged,
    target: np.ndarray,
    q: np.ndarray,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """``V_DR = (1/n) sum_i [sum_a pi(a|x_i) q(x_i,a) + w_i (r_i - q(x_i,a_i))]`` (Dudik 2011).

    ``q`` has shape (n, K): the reward model's prediction for every arm of every row.
    """
    w = importance_weights(logged, target)
    rows = np.arange(logged.n)
    direct = np.sum(target * q, axis=1)
    terms = direct + w * (logged.rewards - q[rows, logged.actions])
    return _estimate("dr", terms, np.ones(logged.n), w, resamples, level, seed)


def ridge_reward_model(
    logged: Logged, *, ridge: float = 1.0, folds: int = 2, seed: int = 0, clip: bool = True
) -> np.ndarray:
    """Cross-fitted per-arm ridge predictions ``q(x_i, a)`` for every row and arm, shape (n, K).

    Per arm, over ``z = [1, x]``: ``theta_a = (lambda I + Z_a^T Z_a)^-1 (lambda theta_0 +
    Z_a^T r_a)``, shrunk toward the pooled model ``theta_0`` (all arms together), exactly the
    learner's ridge (``origin.learn.ridge_solve``). With no context columns this is each arm's
    mean reward shrunk toward the overall mean. Rows in fold k are predicted by models fitted
    on the other folds (``folds=1`` fits and predicts on all rows). With ``clip`` the
    predictions are clipped to the observed reward range (a linear model can extrapolate to a
    negative click rate, which no policy can earn).
    """
    n, k = logged.n, logged.arms
    z = np.hstack((np.ones((n, 1)), logged.contexts.reshape(n, -1)))
    out = np.zeros((n, k))
    if n == 0:
        return out
    assignment = (
        np.random.default_rng(seed).permutation(n) % folds if folds > 1 else np.zeros(n, int)
    )
    for fold in range(max(folds, 1)):
        test = assignment == fold
        train = ~test if folds > 1 else test
        if not train.any():
            continue
        zt, rt, at = z[train], logged.rewards[train], logged.actions[train]
        pooled = ridge_solve(zt.T @ zt, zt.T @ rt, ridge)
        for arm in range(k):
            mine = at == arm
            theta = ridge_solve(zt[mine].T @ zt[mine], zt[mine].T @ rt[mine], ridge, pooled)
            out[test, arm] = z[test] @ theta
    if clip:
        np.clip(out, logged.rewards.min(), logged.rewards.max(), out=out)
    return out


def evaluate(
    logged: Logged,
    target: np.ndarray,
    q: np.ndarray | None = None,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    estimators: Sequence[str] = ESTIMATORS,
) -> dict[str, Estimate]:
    """Every requested estimator for one target (``q`` defaults to :func:`ridge_reward_model`)."""
    if target.shape != (logged.n, logged.arms):
        raise ValueError(f"target must have shape {(logged.n, logged.arms)}, got {target.shape}")
    out: dict[str, Estimate] = {}
    kw: dict[str, Any] = {"resamples": resamples, "level": level, "seed": seed}
    for name in estimators:
        if name == "ips":
            out[name] = ips(logged, target, **kw)
        elif name == "snips":
            out[name] = snips(logged, target, **kw)
        elif name == "dr":
            if q is None:
                q = ridge_reward_model(logged, seed=seed)
            out[name] = dr(logged, target, q, **kw)
        else:
            raise ValueError(f"unknown estimator {name!r} (known: {', '.join(ESTIMATORS)})")
    return out


def on_policy(
    rewards: np.ndarray, *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> Estimate:
    """The logged rewards' mean with its bootstrap interval (the logging policy's own value)."""
    ones = np.ones(len(rewards))
    return _estimate("on-policy", rewards.astype(float), ones, ones, resamples, level, seed)


def uniform_target(logged: Logged) -> np.ndarray:
    """The uniform random policy over all K arms, shape (n, K)."""
    return np.full((logged.n, logged.arms), 1.0 / logged.arms)


def format_table(
    rows: Sequence[tuple[str, Estimate]], *, scale: float = 1.0, unit: str = ""
) -> str:
    """A plain-text table: label, estimator, value, interval, width, n, ESS."""
    head = f"{'policy':28} {'estimator':9} {'value':>9} {'95% interval':>21} {'width':>8} "
    head += f"{'n':>7} {'ESS':>9}"
    lines = [head, "-" * len(head)]
    for label, e in rows:
        lines.append(
            f"{label[:28]:28} {e.estimator:9} {e.value * scale:9.4f}{unit} "
            f"[{e.low * scale:8.4f}, {e.high * scale:8.4f}] {e.width * scale:8.4f} "
            f"{e.n:7d} {e.ess:9.1f}"
        )
    return "\n".join(lines)
