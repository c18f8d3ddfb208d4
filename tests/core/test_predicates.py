"""The generated audience predicates agree with the reference closures of core.conditions."""

from __future__ import annotations

import inspect
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core import conditions
from core.predicates import compile_hits, compile_predicate, compile_predicates
from tests.core.condition_strategies import nested_conditions

KEYS = ("country", "visits", "tags", "user.plan")
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["DE", "US", "mobile", "", "10", "1.2.3", "pro"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner),
    max_leaves=6,
)
OPERATORS = st.sampled_from(
    [
        "$eq",
        "$ne",
        "$lt",
        "$lte",
        "$gt",
        "$gte",
        "$in",
        "$nin",
        "$exists",
        "$regex",
        "$size",
        "$type",
        "$elemMatch",
        "$all",
        "$veq",
        "$bogus",
    ]
)


def _operator_object() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(
        OPERATORS, VALUES | st.lists(SCALARS, max_size=4), min_size=0, max_size=2
    )


FIELD_TESTS = st.dictionaries(st.sampled_from(KEYS), VALUES | _operator_object(), max_size=3)
CONDITIONS = nested_conditions(FIELD_TESTS)
ATTRIBUTES = st.dictionaries(st.sampled_from([*KEYS, "user"]), VALUES, max_size=4)


@settings(max_examples=400, deadline=None)
@given(CONDITIONS, ATTRIBUTES)
def test_generated_source_matches_the_reference(condition: Any, attrs: dict[str, Any]) -> None:
    assert compile_predicate(condition)(attrs) is conditions.evaluate(condition, attrs)


def test_predicates_are_generated_code_not_the_fallback() -> None:
    predicate = compile_predicate({"country": {"$in": ["DE", "FR"]}, "visits": {"$gte": 10}})
    assert predicate.__code__.co_filename.startswith("<edgepick audiences ")
    source = inspect.getsource(predicate)  # registered: tracebacks and inspect show it
    assert source.startswith("def ") and "'country'" in source and "'visits'" in source
    assert predicate({"country": "DE", "visits": 10}) is True
    assert predicate({"country": "DE", "visits": 9}) is False
    assert predicate({"country": ["US", "FR"], "visits": "11"}) is True  # reference fallbacks


def test_author_text_never_becomes_source() -> None:
    hostile = "x') or __import__('os') or ('\n"
    predicate = compile_predicate({hostile: hostile, "k": {"$ne": hostile}})
    assert predicate({hostile: hostile, "k": "y"}) is True
    assert predicate({hostile: "other"}) is False


def test_a_condition_too_deep_for_the_parser_falls_back_to_the_reference() -> None:
    deep: dict[str, Any] = {"country": "DE"}
    for _ in range(110):  # 220 nested parentheses: past the parser's 200
        deep = {"$not": {"$not": deep}}
    found = compile_predicates({"deep": deep, "plain": {"country": "US"}})
    assert not found["deep"].__code__.co_filename.startswith("<edgepick")  # the reference
    assert found["deep"]({"country": "DE"}) is True
    assert found["deep"]({"country": "US"}) is False
    assert found["plain"].__code__.co_filename.startswith("<edgepick audience")
    assert found["plain"]({"country": "US"}) is True


def test_attributes_that_are_not_a_mapping_match_nothing_that_needs_a_value() -> None:
    predicate = compile_predicate({"country": {"$exists": False}})
    assert predicate(None) is True  # type: ignore[arg-type]
    assert compile_predicate({"country": "DE"})(42) is False  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.lists(CONDITIONS, min_size=1, max_size=3), ATTRIBUTES)
def test_hit_vectors_are_each_audience_in_order(picked: list[Any], attrs: dict[str, Any]) -> None:
    named = {f"a{i}": c for i, c in enumerate(picked)}
    order = ("nope", *reversed(named), "a0")  # an unknown name, repeats, any order
    hits = compile_hits(named, {"slot": order})["slot"]
    expected = tuple(n in named and conditions.evaluate(named[n], attrs) for n in order)
    assert hits(attrs) == expected


def test_a_hit_vector_with_a_condition_too_deep_falls_back_to_the_reference() -> None:
    deep: dict[str, Any] = {"country": "DE"}
    for _ in range(110):
        deep = {"$not": {"$not": deep}}
    hits = compile_hits(
        {"deep": deep, "us": {"country": "US"}}, {"s": ("us", "deep"), "t": ("us",)}
    )
    assert not hits["s"].__code__.co_filename.startswith("<edgepick")
    assert hits["t"].__code__.co_filename.startswith("<edgepick audiences ")
    assert hits["s"]({"country": "DE"}) == (False, True)
    assert hits["t"]({"country": "US"}) == (True,)
