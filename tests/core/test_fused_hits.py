"""Fused audience functions (``core.predicates.compile_fused_hits``) read plain fields straight
from the visitor state and request context: for any condition and any visitor they give exactly
the hits the attribute document gives, and conditions needing the document are left out."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bench import peer_work
from core.decide import decide
from core.engine import Engine
from core.features import FIELDS, RequestContext, VisitorState, attributes
from core.model import Signals
from core.predicates import compile_fused_hits, compile_hits
from tests.core.condition_strategies import nested_conditions

NOW = 1_790_000_000
FIELD_KEYS = sorted(FIELDS)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["DE", "US", "mobile", "desktop", "", "10", "search", "/c/run", "é", "US "]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=5)
OPERATORS = st.sampled_from(
    ["$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$exists", "$regex", "$size",
     "$type", "$all", "$veq", "$vgt", "$bogus"]
)  # fmt: skip
OPERATOR_OBJECTS = st.dictionaries(OPERATORS, VALUES, min_size=1, max_size=2)
FIELD_TESTS = st.dictionaries(st.sampled_from(FIELD_KEYS), VALUES | OPERATOR_OBJECTS, max_size=3)
CONDITIONS = nested_conditions(FIELD_TESTS)
TEXT = st.sampled_from(["", "DE", "US", "mobile", "desktop", "search", "email", "é", "10"])
STATES = st.builds(
    VisitorState,
    visitor_id=st.text(min_size=1, max_size=8),
    visits=st.integers(0, 40),
    page_views=st.integers(0, 100),
    stage=TEXT,
)
CONTEXTS = st.builds(
    RequestContext,
    path=st.sampled_from(["/", "/c/running", "/landing/outdoor"]),
    device=TEXT,
    country=TEXT,
    referrer=TEXT,
    utm_source=TEXT,
    utm_campaign=TEXT,
    hour=st.integers(0, 23),
    weekday=st.integers(0, 6),
    consent=st.booleans(),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(CONDITIONS, min_size=1, max_size=4), STATES, CONTEXTS)
def test_fused_hits_equal_the_documents(
    conditions: list[dict[str, Any]], state: VisitorState, context: RequestContext
) -> None:
    named = {f"a{i}": c for i, c in enumerate(conditions)}
    groups_of = {"slot": [*named, "unknown"]}
    fused = compile_fused_hits(named, groups_of, FIELDS)
    reference = compile_hits(named, groups_of)["slot"]
    document = attributes(state, context, NOW, Signals())
    assert "slot" in fused  # plain fields only: always fused
    assert fused["slot"](state, context) == reference(document)


def test_conditions_needing_the_document_are_not_fused() -> None:
    named: dict[str, dict[str, Any]] = {
        "plain": {"country": "DE"},
        "computed": {"daysSinceFirstVisit": {"$gt": 3}},  # a computed attribute
        "dotted": {"affinity.shoes": {"$gt": 1}},
        "group": {"$savedGroup": "vip"},
        "unknown": {"plan": "pro"},  # not an attribute edgepick builds (extra attributes)
    }
    groups = {name: ["plain", name] for name in named}
    fused = compile_fused_hits(named, groups, FIELDS, {"vip": {"condition": {"id": "x"}}})
    assert set(fused) == {"plain"}


def test_a_request_with_extra_attributes_is_targeted_on_its_document() -> None:
    """Extra attributes override plain fields: such a request never takes the fused path."""
    engine = Engine.from_site(peer_work.rules_site())
    assert engine.slots["cta"].fused is not None
    state = VisitorState("0123456789abcdef", visits=1)
    plain = RequestContext(country="US", device="desktop", referrer="direct")
    extra = RequestContext(
        country="US", device="desktop", referrer="direct", extra={"country": "DE"}
    )
    assert decide(engine, state, plain, NOW, ("cta",))[0].variant != "explore"
    assert decide(engine, state, extra, NOW, ("cta",))[0].variant == "explore"  # rule a0


@settings(max_examples=200, deadline=None)
@given(STATES, CONTEXTS)
def test_the_fixture_sites_slots_decide_the_same_either_way(
    engine: Engine, state: VisitorState, context: RequestContext
) -> None:
    """Every slot's fused function against its document function, on the fixture site."""
    document = engine.build_attributes(state, context, NOW, engine.site.signals, {})
    for prepared in engine.slots.values():
        if prepared.fused is not None:
            assert prepared.fused(state, context) == prepared.hits(document)


def test_one_audience_too_deep_to_compile_leaves_the_other_slots_fused() -> None:
    deep: dict[str, Any] = {"country": "US"}
    for _ in range(110):  # 220 nested parentheses: more than Python's parser takes
        deep = {"$not": {"$not": deep}}
    named = {"plain": {"country": "US"}, "deep": deep}
    fused = compile_fused_hits(named, {"a": ["plain"], "b": ["deep"]}, FIELDS)
    assert "a" in fused
    state, context = VisitorState("v"), RequestContext(country="US")
    assert fused["a"](state, context) == (True,)
    if "b" in fused:  # compiled after all on a Python whose parser takes it: still exact
        assert fused["b"](state, context) == compile_hits(named, {"b": ["deep"]})["b"](
            attributes(state, context, NOW, Signals())
        )
