from __future__ import annotations

import math
from itertools import accumulate, pairwise
from math import fsum

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.model import Exploration, LinearArm, LinearPolicy, ThompsonPolicy
from core.policies import (
    PreparedPolicy,
    inverse_gap,
    pick,
    prepare,
    renormalize,
    softmax,
    with_floor,
)

weights = st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), min_size=1, max_size=12)


@st.composite
def weights_and_eligible(draw: st.DrawFn) -> tuple[list[float], list[int]]:
    w = draw(weights)
    eligible = sorted(draw(st.sets(st.integers(0, len(w) - 1), min_size=1)))
    return w, eligible


@given(weights_and_eligible(), st.floats(min_value=0, max_value=1))
def test_thompson_probabilities_sum_to_one_and_respect_floor(
    data: tuple[list[float], list[int]], floor: float
) -> None:
    w, eligible = data
    policy = prepare(ThompsonPolicy(tuple(w), floor))
    probs = policy.score(eligible, (), False).probabilities
    assert sum(probs) == pytest.approx(1.0)
    for i, p in enumerate(probs):
        if i in eligible:
            assert p >= floor / len(eligible) - 1e-12
        else:
            assert p == 0.0


@given(
    weights_and_eligible(),
    st.floats(min_value=0.001, max_value=10),
    st.floats(min_value=0, max_value=500),
)
def test_exploration_rules_give_distributions(
    data: tuple[list[float], list[int]], tau: float, gamma: float
) -> None:
    scores, eligible = data
    for probs in (
        softmax(scores, eligible, len(scores), tau),
        inverse_gap(scores, eligible, len(scores), gamma),
    ):
        assert sum(probs) == pytest.approx(1.0)
        assert all(p >= 0 for p in probs)
        assert all(probs[i] == 0 for i in range(len(scores)) if i not in eligible)
        best = max(eligible, key=lambda i: scores[i])
        assert probs[best] == pytest.approx(max(probs))


def test_inverse_gap_formula() -> None:
    probs = inverse_gap([1.0, 0.5, 0.0], [0, 1, 2], 3, gamma=10.0)
    assert probs[1] == pytest.approx(1 / (3 + 10 * 0.5))
    assert probs[2] == pytest.approx(1 / (3 + 10 * 1.0))
    assert probs[0] == pytest.approx(1 - probs[1] - probs[2])


@given(
    st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=10),
    st.floats(min_value=0, max_value=0.999999),
)
def test_pick_is_inverse_cdf(raw: list[float], u: float) -> None:
    assume(sum(raw) > 0)
    probs = [p / sum(raw) for p in raw]
    i = pick(list(accumulate(probs)), u)
    assert probs[i] > 0
    before = sum(probs[:i])
    assert before <= u + 1e-9
    assert u < before + probs[i] + 1e-9 or i == max(j for j, p in enumerate(probs) if p > 0)


def test_renormalize_all_zero_is_uniform_over_eligible() -> None:
    assert renormalize([0.0, 0.0, 0.0], [0, 2], 3) == [0.5, 0.0, 0.5]
    assert with_floor([1.0, 0.0, 0.0], [0, 1], 0.2) == pytest.approx([0.9, 0.1, 0.0])


def test_linear_scores_and_cold_start() -> None:
    policy = prepare(
        LinearPolicy(
            features=("bias", "device:mobile"),
            arms=(LinearArm(0.0, (0.0, 1.0)), LinearArm(0.5, (0.0, 0.0))),
            exploration=Exploration.SOFTMAX,
            temperature=0.1,
            floor=0.0,
            cold_start=(0.9, 0.1),
        )
    )
    scored = policy.score([0, 1], (1.0, 1.0), False)
    assert scored.scores == (1.0, 0.5)
    assert scored.probabilities[0] > 0.99
    cold = policy.score([0, 1], (1.0, 1.0), True)
    assert cold.probabilities == pytest.approx([0.9, 0.1])


_ANY_SCORE = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [float("nan"), float("inf"), float("-inf")]
)


@given(st.data())
def test_non_finite_scores_never_give_an_ineligible_arm(data: st.DataObject) -> None:
    """NaN or infinite scores (a poisoned model or cookie) fall back to uniform over the
    eligible set: finite probabilities summing to 1, zero outside it, and pick() stays inside."""
    count = data.draw(st.integers(1, 8))
    eligible = sorted(data.draw(st.sets(st.integers(0, count - 1), min_size=1)))
    scores = data.draw(st.lists(_ANY_SCORE, min_size=count, max_size=count))
    u = data.draw(st.floats(0.0, 1.0, exclude_max=True))
    for probs in (
        softmax(scores, eligible, count, data.draw(st.floats(1e-6, 10.0))),
        inverse_gap(scores, eligible, count, data.draw(st.floats(0.0, 1e6))),
    ):
        assert all(0.0 <= p <= 1.0 for p in probs)
        assert abs(sum(probs) - 1.0) < 1e-9
        assert all(probs[i] == 0.0 for i in range(count) if i not in eligible)
        assert pick(list(accumulate(probs)), u) in eligible


@given(
    st.lists(st.floats(0.0, 1.0) | st.just(float("nan")), min_size=1, max_size=8),
    st.floats(0.0, 1.0),
)
def test_pick_returns_an_arm_with_positive_width_whenever_one_exists(
    probs: list[float], u: float
) -> None:
    i = pick(list(accumulate(probs)), u)
    assert 0 <= i < len(probs)
    if any(p > 0.0 for p in probs if p == p) and all(p == p for p in probs):
        assert probs[i] > 0.0


# ------------------------------------------------------------ squarecb: exploration that decays

_SCORE = st.floats(-1.0, 1.0, allow_nan=False)


@st.composite
def squarecb_case(
    draw: st.DrawFn,
) -> tuple[list[float], list[float], list[int], float]:
    count = draw(st.integers(1, 8))
    scores = draw(st.lists(_SCORE, min_size=count, max_size=count))
    gammas = draw(st.lists(st.floats(0.0, 1e5), min_size=count, max_size=count))
    eligible = sorted(draw(st.sets(st.integers(0, count - 1), min_size=1)))
    floor = draw(st.floats(0.0, 1.0))
    return scores, gammas, eligible, floor


def _squarecb(scores: list[float], gammas: list[float], floor: float) -> PreparedPolicy:
    """A squarecb policy whose arms score exactly ``scores`` (bias only) with learned gammas."""
    return prepare(
        LinearPolicy(
            features=("bias",),
            arms=tuple(LinearArm(s, (0.0,)) for s in scores),
            exploration=Exploration.SQUARECB,
            floor=floor,
            gammas=tuple(gammas),
        )
    )


@given(squarecb_case(), st.floats(0.0, 1.0, exclude_max=True))
def test_squarecb_is_a_distribution_with_the_floor_and_an_exact_propensity(
    case: tuple[list[float], list[float], list[int], float], u: float
) -> None:
    scores, gammas, eligible, floor = case
    scored = _squarecb(scores, gammas, floor).score(eligible, (0.0,), False)
    probs = scored.probabilities
    k = len(eligible)
    assert abs(fsum(probs) - 1.0) < 1e-12
    assert all(probs[i] == 0.0 for i in range(len(scores)) if i not in eligible)
    best = max(eligible, key=scores.__getitem__)
    for i in eligible:
        assert probs[i] >= floor / k - 1e-15  # the author's floor
        if i != best:  # the closed form, recomputed here
            want = (1.0 - floor) / (k + gammas[i] * (scores[best] - scores[i])) + floor / k
            assert probs[i] == pytest.approx(want, rel=1e-12, abs=1e-15)
            assert probs[i] <= 1.0 / k + 1e-15
    assert probs[best] >= max(probs) - 1e-12  # 1 - the others: rounding, for ties
    # the served arm's logged propensity is the width of the interval of u that serves it
    arm = pick(scored.cumulative, u)
    assert arm in eligible
    width = scored.cumulative[arm] - (scored.cumulative[arm - 1] if arm else 0.0)
    assert width == pytest.approx(probs[arm], rel=1e-9, abs=1e-15)


@given(squarecb_case(), st.integers(0, 7), st.floats(1.0, 100.0))
def test_squarecb_exploration_shrinks_as_an_arms_gamma_grows(
    case: tuple[list[float], list[float], list[int], float], which: int, growth: float
) -> None:
    """gamma_a = c sqrt(n_a) / sigma grows with the arm's data: its probability (when it is not
    the best) never grows, and the best arm's never shrinks."""
    scores, gammas, eligible, floor = case
    arm = eligible[which % len(eligible)]
    more = list(gammas)
    more[arm] = gammas[arm] * growth + 1.0
    before = _squarecb(scores, gammas, floor).score(eligible, (0.0,), False).probabilities
    after = _squarecb(scores, more, floor).score(eligible, (0.0,), False).probabilities
    best = max(eligible, key=scores.__getitem__)
    if arm != best:
        assert after[arm] <= before[arm]
        assert after[best] >= before[best] - 1e-15
    else:
        assert after == before  # the best arm's own gamma does not enter


@given(
    st.lists(_SCORE, min_size=2, max_size=8, unique=True),
    st.floats(0.01, 100.0),
    st.floats(0.001, 1000.0),
)
def test_squarecb_does_not_depend_on_the_reward_scale(
    scores: list[float], c: float, scale: float
) -> None:
    """Rewards times k: scores and sigma times k, so gamma_a (s_best - s_a) is unchanged."""
    n = [100.0 * (i + 1) for i in range(len(scores))]
    sigma = 0.3
    eligible = list(range(len(scores)))

    def probs(k: float) -> tuple[float, ...]:
        gammas = [c * math.sqrt(m) / (sigma * k) for m in n]
        policy = _squarecb([s * k for s in scores], gammas, 0.05)
        return policy.score(eligible, (0.0,), False).probabilities

    assert probs(scale) == pytest.approx(probs(1.0), rel=1e-9, abs=1e-12)


def test_squarecb_explores_less_with_more_data_and_is_uniform_without() -> None:
    scores = [0.10, 0.08, 0.02]
    sigma, c = 0.3, 50.0

    def explore(n: float) -> float:
        gammas = [c * math.sqrt(n) / sigma] * 3
        probs = _squarecb(scores, gammas, 0.0).score([0, 1, 2], (0.0,), False).probabilities
        return 1.0 - probs[0]

    shares = [explore(n) for n in (0, 10, 100, 1_000, 10_000, 100_000)]
    assert shares[0] == pytest.approx(2 / 3)  # gamma 0: uniform
    assert all(a > b for a, b in pairwise(shares))
    assert shares[-1] < 0.01
    # before the learner publishes gammas, squarecb uses the authored gamma for every arm
    authored = prepare(
        LinearPolicy(
            ("bias",),
            tuple(LinearArm(s, (0.0,)) for s in scores),
            Exploration.SQUARECB,
            gamma=10.0,
            floor=0.0,
        )
    )
    got = authored.score([0, 1, 2], (0.0,), False).probabilities
    assert got == pytest.approx(inverse_gap(scores, [0, 1, 2], 3, 10.0))
