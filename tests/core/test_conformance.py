"""GrowthBook's published cross-SDK cases, read from ../shared/conformance (never copied)."""

from __future__ import annotations

from typing import Any

import pytest

from core import bucketing, conditions, hashing, predicates
from tests.conftest import conformance_cases


@pytest.mark.parametrize("case", conformance_cases("evalCondition"))
def test_eval_condition(case: list[Any]) -> None:
    name, condition, attributes, expected, *rest = case
    saved_groups = rest[0] if rest else None
    assert conditions.evaluate(condition, attributes, saved_groups) is expected, name


@pytest.mark.parametrize("case", conformance_cases("evalCondition"))
def test_eval_condition_generated(case: list[Any]) -> None:
    """The same cases through the generated source the engine runs (core.predicates)."""
    name, condition, attributes, expected, *rest = case
    saved_groups = rest[0] if rest else None
    predicate = predicates.compile_predicate(condition, saved_groups)
    assert predicate(attributes) is expected, name


@pytest.mark.parametrize("case", conformance_cases("hash"))
def test_hash(case: list[Any]) -> None:
    seed, value, version, expected = case
    result = hashing.gbhash(seed, value, version)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("case", conformance_cases("getBucketRange"))
def test_bucket_ranges(case: list[Any]) -> None:
    _name, (count, coverage, weights), expected = case
    ranges = bucketing.bucket_ranges(count, coverage, weights)
    assert [[round(a, 6), round(b, 6)] for a, b in ranges] == [
        [round(a, 6), round(b, 6)] for a, b in expected
    ]


@pytest.mark.parametrize("case", conformance_cases("chooseVariation"))
def test_choose_variation(case: list[Any]) -> None:
    _name, n, ranges, expected = case
    assert bucketing.choose_variation(n, [tuple(r) for r in ranges]) == expected


@pytest.mark.parametrize("case", conformance_cases("inNamespace"))
def test_in_namespace(case: list[Any]) -> None:
    _name, hash_value, namespace, expected = case
    assert bucketing.in_namespace(hash_value, tuple(namespace)) is expected


@pytest.mark.parametrize("case", conformance_cases("getEqualWeights"))
def test_equal_weights(case: list[Any]) -> None:
    count, expected = case
    assert [round(w, 8) for w in bucketing.equal_weights(count)] == [round(w, 8) for w in expected]
