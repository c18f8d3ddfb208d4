"""Validating the OPE estimators against exact ground truth: scikit-learn's digits as a bandit.

The supervised-to-bandit conversion of Dudik, Langford & Li (2011), section 5: each image
``x_i`` (8x8 pixels, 64 features) is a context, the 10 classes are arms, and the reward of
arm ``a`` is ``1[a = y_i]``. The data ship with scikit-learn (``load_digits``, 1,797 images,
no download).

* The images are split (seeded) into a *training* part, used only to fit classifiers, and an
  *evaluation* part ``D`` (the bandit's contexts).
* **Logging policy** ``pi_0``: a weak classifier (multinomial logistic regression on 60
  images) made stochastic, ``pi_0(.|x) = (1 - eps) softmax(s(x) / tau) + eps / 10``; its
  propensities are known exactly.
* **Targets**: ``uniform``; ``soft`` (a strong classifier on the whole training part,
  softmax at temperature 0.5) and ``greedy`` (its argmax, deterministic).
* **Truth**: on ``D`` the value is exactly ``V(pi) = (1/|D|) sum_i pi(y_i | x_i)``.
* Each repeat draws fresh logged actions ``a_i ~ pi_0(.|x_i)`` on every context of ``D`` and
  computes IPS, SNIPS and DR with their bootstrap intervals; over repeats we report bias
  (mean error), RMSE and the share of intervals that cover the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from origin.ope import ESTIMATORS, Logged, evaluate


def softmax_rows(scores: np.ndarray, tau: float) -> np.ndarray:
    z = (scores - scores.max(axis=1, keepdims=True)) / tau
    e = np.exp(z)
    result: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return result


@dataclass(frozen=True, slots=True)
class DigitsProblem:
    contexts: np.ndarray  # (n, 64), scaled to [0, 1]
    labels: np.ndarray  # (n,)
    logging: np.ndarray  # (n, 10) pi_0
    targets: dict[str, np.ndarray]  # name -> (n, 10)

    def truth(self, name: str) -> float:
        """``(1/n) sum_i pi(y_i | x_i)``: the exact value of a target on the contexts."""
        pi = self.targets[name]
        return float(pi[np.arange(len(self.labels)), self.labels].mean())

    def log(self, rng: np.random.Generator) -> Logged:
        """One logged data set: actions drawn from ``pi_0``, rewards ``1[a = y]``."""
        cumulative = self.logging.cumsum(axis=1)
        u = rng.random(len(self.labels))[:, None]
        actions = np.minimum((u > cumulative).sum(axis=1), 9)
        rows = np.arange(len(actions))
        rewards = (actions == self.labels).astype(float)
        return Logged(actions, rewards, self.logging[rows, actions], self.contexts, 10)


def problem(seed: int = 0, weak: int = 60, tau: float = 1.0, eps: float = 0.1) -> DigitsProblem:
    """The digits bandit (see the module docstring)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    train, test = order[: len(y) // 3], order[len(y) // 3 :]
    weak_model = LogisticRegression(max_iter=200, C=0.05).fit(x[train[:weak]], y[train[:weak]])
    strong = LogisticRegression(max_iter=1000, C=1.0).fit(x[train], y[train])
    xt = x[test]
    logging = (1 - eps) * softmax_rows(weak_model.decision_function(xt), tau) + eps / 10
    soft = softmax_rows(strong.decision_function(xt), 0.5)
    greedy = np.eye(10)[soft.argmax(axis=1)]
    uniform = np.full_like(soft, 0.1)
    targets = {"uniform": uniform, "soft": soft, "greedy": greedy, "logging": logging}
    return DigitsProblem(xt, y[test], logging, targets)


def validate(
    repeats: int = 100, resamples: int = 300, seed: int = 0, targets: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Bias, RMSE and interval coverage of every estimator for every target over repeats."""
    bandit = problem(seed)
    names = targets or ("uniform", "soft", "greedy")
    rng = np.random.default_rng(seed + 1)
    errors: dict[tuple[str, str], list[float]] = {}
    covered: dict[tuple[str, str], list[bool]] = {}
    widths: dict[tuple[str, str], list[float]] = {}
    for r in range(repeats):
        logged = bandit.log(rng)
        for name in names:
            truth = bandit.truth(name)
            estimates = evaluate(logged, bandit.targets[name], resamples=resamples, seed=seed + r)
            for est, e in estimates.items():
                errors.setdefault((name, est), []).append(e.value - truth)
                covered.setdefault((name, est), []).append(e.covers(truth))
                widths.setdefault((name, est), []).append(e.width)
    table: dict[str, Any] = {}
    for name in names:
        table[name] = {"truth": round(bandit.truth(name), 5)}
        for est in ESTIMATORS:
            err = np.asarray(errors[(name, est)])
            table[name][est] = {
                "bias": round(float(err.mean()), 5),
                "rmse": round(float(np.sqrt((err**2).mean())), 5),
                "coverage": round(float(np.mean(covered[(name, est)])), 3),
                "mean_width": round(float(np.mean(widths[(name, est)])), 5),
            }
    return {
        "n": len(bandit.labels),
        "repeats": repeats,
        "resamples": resamples,
        "seed": seed,
        "logging_value": round(bandit.truth("logging"), 5),
        "targets": table,
    }


def describe(result: dict[str, Any]) -> str:
    lines = [
        f"digits bandit: {result['n']} contexts, 10 arms, {result['repeats']} logged data sets, "
        f"{result['resamples']} bootstrap resamples; logging policy value "
        f"{result['logging_value']:.4f}",
        f"{'target':8} {'truth':>7} {'estimator':9} {'bias':>8} {'RMSE':>8} {'coverage':>9} "
        f"{'mean CI width':>14}",
    ]
    for name, row in result["targets"].items():
        for est in ESTIMATORS:
            s = row[est]
            lines.append(
                f"{name:8} {row['truth']:7.4f} {est:9} {s['bias']:+8.4f} {s['rmse']:8.4f} "
                f"{s['coverage']:9.2f} {s['mean_width']:14.4f}"
            )
    return "\n".join(lines)
