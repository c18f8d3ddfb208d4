from __future__ import annotations

from itertools import accumulate

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.model import Exploration, LinearArm, LinearPolicy, ThompsonPolicy
from core.policies import (
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
