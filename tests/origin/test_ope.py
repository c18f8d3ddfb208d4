"""Off-policy estimators: exact identities, synthetic truth, and the digits validation."""

from __future__ import annotations

import numpy as np
import pytest

from origin.digits import problem, validate
from origin.ope import Logged, dr, evaluate, ips, ridge_reward_model, snips, uniform_target


def bernoulli_logs(n: int, seed: int, means: tuple[float, ...] = (0.1, 0.3, 0.6)) -> Logged:
    """Logs of a non-uniform context-free policy (0.5, 0.3, 0.2) with Bernoulli rewards."""
    rng = np.random.default_rng(seed)
    logging = np.asarray([0.5, 0.3, 0.2])
    actions = rng.choice(3, size=n, p=logging)
    rewards = (rng.random(n) < np.asarray(means)[actions]).astype(float)
    return Logged(actions, rewards, logging[actions], np.zeros((n, 0)), 3)


def test_ips_with_the_logging_policy_is_the_sample_mean_exactly() -> None:
    logs = bernoulli_logs(2000, 0)
    target = np.tile([0.5, 0.3, 0.2], (logs.n, 1))
    for e in evaluate(logs, target, resamples=200, estimators=("ips", "snips")).values():
        assert e.value == pytest.approx(logs.rewards.mean(), abs=1e-12)
        assert e.ess == pytest.approx(logs.n)


def test_estimators_recover_a_known_value_and_cover_it() -> None:
    truth = 0.6  # always arm 2
    target = np.tile([0.0, 0.0, 1.0], (4000, 1))
    logs = bernoulli_logs(4000, 1)
    for name, e in evaluate(logs, target, resamples=300, seed=1).items():
        assert abs(e.value - truth) < 0.05, name
        assert e.covers(truth), name
        assert e.low < e.value < e.high


def test_wrong_propensities_are_caught() -> None:
    """A negative control: logging the uniform 1/3 instead of the true propensity biases IPS."""
    logs = bernoulli_logs(4000, 2)
    wrong = Logged(logs.actions, logs.rewards, np.full(logs.n, 1 / 3), logs.contexts, 3)
    target = np.tile([0.0, 0.0, 1.0], (logs.n, 1))
    assert not ips(wrong, target, resamples=300).covers(0.6)
    assert ips(logs, target, resamples=300).covers(0.6)


def test_snips_is_invariant_to_scaling_the_target() -> None:
    logs = bernoulli_logs(1000, 3)
    target = np.tile([0.2, 0.2, 0.6], (logs.n, 1))
    a = snips(logs, target, resamples=100)
    b = snips(logs, target * 3.0, resamples=100)
    assert a.value == pytest.approx(b.value)
    assert ips(logs, target * 3.0, resamples=100).value == pytest.approx(
        3 * ips(logs, target, resamples=100).value
    )


def test_dr_with_a_perfect_reward_model_beats_ips() -> None:
    logs = bernoulli_logs(3000, 4)
    target = np.tile([0.0, 0.0, 1.0], (logs.n, 1))
    perfect = np.tile([0.1, 0.3, 0.6], (logs.n, 1))
    assert dr(logs, target, perfect, resamples=300).width < ips(logs, target, resamples=300).width
    fitted = ridge_reward_model(logs)
    assert fitted.shape == (logs.n, 3)
    assert np.allclose(fitted.mean(axis=0), [0.1, 0.3, 0.6], atol=0.05)


def test_bootstrap_is_seeded() -> None:
    logs = bernoulli_logs(500, 5)
    target = uniform_target(logs)
    assert ips(logs, target, seed=7, resamples=200) == ips(logs, target, seed=7, resamples=200)
    assert ips(logs, target, seed=7, resamples=200) != ips(logs, target, seed=8, resamples=200)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="propensities"):
        Logged(np.asarray([0]), np.asarray([1.0]), np.asarray([0.0]), np.zeros((1, 0)), 2)
    logs = bernoulli_logs(10, 6)
    with pytest.raises(ValueError, match="shape"):
        evaluate(logs, np.ones((3, 3)))


def test_digits_truth_is_exact_and_the_logging_policy_is_stochastic() -> None:
    bandit = problem(0)
    assert bandit.truth("uniform") == pytest.approx(0.1)
    assert np.allclose(bandit.logging.sum(axis=1), 1.0)
    assert bandit.logging.min() >= 0.01  # the 10% uniform mix: every arm has support
    assert bandit.truth("greedy") > 0.9 > bandit.truth("logging")


def test_digits_validation_errors_are_small_and_intervals_cover() -> None:
    repeats = 60
    result = validate(repeats=repeats, resamples=200, seed=0)
    for target, row in result["targets"].items():
        for est in ("ips", "snips", "dr"):
            s = row[est]
            # unbiased within the Monte Carlo error of the mean over repeats (3 standard errors)
            assert abs(s["bias"]) < 3 * s["rmse"] / repeats**0.5 + 0.005, (target, est, s)
            assert s["rmse"] < 0.12, (target, est, s)
            assert s["coverage"] >= 0.8, (target, est, s)
    assert result["targets"]["soft"]["snips"]["rmse"] < 0.03
