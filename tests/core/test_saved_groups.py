"""A condition group that refers back to itself through a logical operator matches nobody
(GrowthBook's JS SDK carries the groups being expanded the same way); it does not recurse."""

from __future__ import annotations

from core.conditions import evaluate
from core.predicates import compile_predicate

GROUPS = {
    "loop": {"type": "condition", "condition": {"$or": [{"$savedGroup": {"id": "loop"}}]}},
    "ring": {"type": "condition", "condition": {"$and": [{"$savedGroup": {"id": "ring2"}}]}},
    "ring2": {"type": "condition", "condition": {"$not": {"$savedGroup": {"id": "ring"}}}},
}


def test_self_reference_through_logical_operators_matches_nobody() -> None:
    for gid in GROUPS:
        condition = {"$savedGroup": {"id": gid}}
        assert evaluate(condition, {"x": 1}, GROUPS) in (True, False)
        assert compile_predicate(condition, GROUPS)({"x": 1}) == evaluate(
            condition, {"x": 1}, GROUPS
        )
    assert evaluate({"$savedGroup": {"id": "loop"}}, {}, GROUPS) is False
