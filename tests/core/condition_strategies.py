"""Hypothesis strategies shared by the condition compilers' tests: GrowthBook conditions
nesting ``$and``/``$or``/``$nor``/``$not`` over field tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def nested_conditions(field_tests: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """Conditions built from ``field_tests`` (one field test, logical nesting, and merges of a
    condition with another field test), at most 8 leaves."""
    return st.recursive(
        field_tests,
        lambda inner: st.one_of(
            st.builds(
                lambda op, parts: {op: parts},
                st.sampled_from(["$and", "$or", "$nor"]),
                st.lists(inner, max_size=3),
            ),
            st.builds(lambda part: {"$not": part}, inner),
            st.builds(lambda a, b: {**a, **b}, inner, field_tests),
        ),
        max_leaves=8,
    )
