from __future__ import annotations

import math
from typing import Any

import pytest

from core import cookie
from core.cookie import Keyring
from core.features import (
    RequestContext,
    VisitorState,
    attributes,
    decayed_affinity,
    feature_problem,
    featurizer,
    record_page_view,
    route,
)
from core.model import Route, Signals

SIGNALS = Signals(
    categories=(
        Route("/c/run", "running"),
        Route("/c/running-shoes", "shoes"),
        Route("/c/", "misc"),
    ),
    funnel=(Route("/p/", "consider"), Route("/cart", "cart")),
    stages=("browse", "consider", "cart"),
    half_life=86400,
    session_timeout=1800,
    max_categories=3,
)
T0 = 1_700_000_000


def test_longest_prefix_wins() -> None:
    assert route(SIGNALS.categories, "/c/running-shoes/x") == "shoes"
    assert route(SIGNALS.categories, "/c/run") == "running"
    assert route(SIGNALS.categories, "/c/other") == "misc"
    assert route(SIGNALS.categories, "/about") == ""


def test_affinity_halves_after_one_half_life() -> None:
    s = record_page_view(VisitorState("v"), T0, "/c/run", SIGNALS)
    assert decayed_affinity(s, T0, SIGNALS.half_life) == {"running": 1.0}
    assert decayed_affinity(s, T0 + 86400, SIGNALS.half_life)["running"] == pytest.approx(0.5)
    s2 = record_page_view(s, T0 + 86400, "/c/run", SIGNALS)
    assert dict(s2.affinity)["running"] == pytest.approx(1.5)


def test_sessions_count_after_inactivity_only() -> None:
    s = record_page_view(VisitorState("v"), T0, "/", SIGNALS)
    assert (s.visits, s.page_views, s.first_seen, s.session_start) == (1, 1, T0, T0)
    s = record_page_view(s, T0 + 600, "/", SIGNALS)
    assert (s.visits, s.page_views, s.session_start) == (1, 2, T0)
    s = record_page_view(s, T0 + 600 + 1801, "/", SIGNALS)
    assert (s.visits, s.page_views, s.session_start, s.first_seen) == (2, 3, T0 + 2401, T0)


def test_funnel_stage_only_moves_forward() -> None:
    s = record_page_view(VisitorState("v"), T0, "/cart", SIGNALS)
    assert s.stage == "cart"
    s = record_page_view(s, T0 + 5, "/p/shoe", SIGNALS)
    assert s.stage == "cart"


def test_only_the_strongest_categories_are_kept() -> None:
    s = VisitorState("v")
    for i, path in enumerate(["/c/run"] * 3 + ["/c/running-shoes"] * 2 + ["/c/x"] + ["/c/run"]):
        s = record_page_view(s, T0 + i, path, SIGNALS)
    assert [c for c, _ in s.affinity] == ["running", "shoes", "misc"]


def test_new_visitor_until_second_view() -> None:
    s = record_page_view(VisitorState("v"), T0, "/", SIGNALS)
    assert s.is_new
    assert not record_page_view(s, T0 + 1, "/", SIGNALS).is_new


def test_attributes_document() -> None:
    s = record_page_view(VisitorState("v", user_id="u1"), T0, "/c/run", SIGNALS)
    ctx = RequestContext(
        path="/c/running-shoes/1", device="mobile", country="FR", extra={"plan": "pro"}
    )
    attrs: dict[str, Any] = attributes(s, ctx, T0 + 3600, SIGNALS)
    assert attrs["topCategory"] == "running"
    assert attrs["category"] == "shoes"
    assert attrs["loggedIn"] is True and attrs["plan"] == "pro"
    assert attrs["hoursSinceLastVisit"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("name", "state", "context", "expected"),
    [
        ("bias", VisitorState("v"), RequestContext(), 1.0),
        ("visits", VisitorState("v", visits=3), RequestContext(), math.log1p(3)),
        ("device:mobile", VisitorState("v"), RequestContext(device="mobile"), 1.0),
        ("device:mobile", VisitorState("v"), RequestContext(device="desktop"), 0.0),
        ("utm:newsletter", VisitorState("v"), RequestContext(utm_source="newsletter"), 1.0),
        ("stage:cart", VisitorState("v", stage="cart"), RequestContext(), 1.0),
        ("flag:buyer", VisitorState("v", flags=frozenset({"buyer"})), RequestContext(), 1.0),
        ("daypart:evening", VisitorState("v"), RequestContext(hour=20), 1.0),
        ("weekend", VisitorState("v"), RequestContext(weekday=6), 1.0),
        ("new_visitor", VisitorState("v", visits=1, page_views=1), RequestContext(), 1.0),
    ],
)
def test_extractors(
    name: str, state: VisitorState, context: RequestContext, expected: float
) -> None:
    assert featurizer((name,))(state, context, {}, T0) == pytest.approx((expected,))


def test_affinity_feature_is_a_share() -> None:
    f = featurizer(("affinity:running",))
    assert f(VisitorState("v"), RequestContext(), {"running": 3.0, "yoga": 1.0}, T0) == (0.75,)
    assert f(VisitorState("v"), RequestContext(), {}, T0) == (0.0,)


def test_a_feature_vector_in_order_with_every_kind() -> None:
    names = ("bias", "visits", "new_visitor", "recency", "weekend", "affinity:yoga",
             "stage:cart", "flag:buyer", "device:mobile", "country:DE", "referrer:email",
             "utm:spring", "daypart:night", "affinity:running")  # fmt: skip
    state = VisitorState("v", visits=2, page_views=9, last_seen=T0 - 7 * 86400, stage="cart")
    context = RequestContext(device="mobile", country="FR", referrer="email", hour=3, weekday=5)
    x = featurizer(names)(state, context, {"running": 1.0, "yoga": 3.0}, T0)
    expected = (1.0, math.log1p(2), 0.0, math.exp(-1.0), 1.0, 0.75,
                1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.25)  # fmt: skip
    assert x == expected
    assert featurizer(names) is featurizer(names)  # generated once per name list
    with pytest.raises(ValueError, match="unknown feature 'colour'"):
        featurizer(("colour:red",))


def test_feature_arguments_never_become_source() -> None:
    hostile = "x') or __import__('os') or ('"
    f = featurizer((f"device:{hostile}", f"affinity:{hostile}"))
    assert f(VisitorState("v"), RequestContext(device=hostile), {hostile: 2.0}, T0) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("colour:red", "unknown feature"),
        ("device", "needs an argument"),
        ("bias:x", "takes no argument"),
        ("daypart:noon", "daypart must be"),
    ],
)
def test_feature_problems(name: str, fragment: str) -> None:
    problem = feature_problem(name)
    assert problem is not None and fragment in problem


def test_fixture_visitor_cookie_fits_the_budget(engine: Any) -> None:
    """A heavy visitor of the fixture site (every category, many visits) stays <= 1024 bytes."""
    signals = engine.site.signals
    paths = [r.prefix + "item" for r in signals.categories] + ["/cart", "/checkout"]
    state = VisitorState("0123456789abcdef0123", user_id="customer-000000123456")
    for i in range(400):
        state = record_page_view(
            state, T0 + i * 4000, paths[i % len(paths)], signals, frozenset({"buyer", "newsletter"})
        )
    assert len(state.affinity) == signals.max_categories
    value = cookie.encode(state, Keyring("k1", {"k1": b"s" * 32}), engine.site.cookie.max_bytes)
    assert len(value) <= 1024
    decoded = cookie.decode(value, Keyring("k1", {"k1": b"s" * 32}), VisitorState("x"))
    assert len(decoded.state.affinity) == signals.max_categories
