"""Browser signals as this session's flags (core.session_signals)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from core.session_signals import MAX_CART, MAX_FLAG, session_flags


def signal(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": "signal", "signal": kind, "path": "/", **fields}


def test_each_signal_sets_its_flag() -> None:
    flags = session_flags(
        frozenset({"buyer", "interest:yoga"}),
        [
            signal("product", name="p1", category="running", action="add"),
            signal("product", name="p2", category="yoga", action="add"),
            signal("product", name="p2", category="yoga", action="remove"),
            signal("product", name="p3", category="hiking", action="view"),
            signal("search", query="trail shoes"),
            signal("form", name="newsletter", action="start"),
            signal("form", name="newsletter", action="submit"),
            signal("track", name="size-guide"),
            signal("track", name="nav-yoga"),
            signal("scroll", depth=100),  # an origin feature: two pages read
        ],
    )
    assert flags == {
        "buyer",  # flags from elsewhere stay
        "cart:running",
        "interest:hiking",  # the last viewed replaces the earlier one
        "searcher",
        "form:newsletter",
        "clicked:nav-yoga",
    }


def test_the_cart_keeps_the_latest_two_categories() -> None:
    adds = [signal("product", name=c, category=c, action="add") for c in ("a", "b", "c", "b")]
    assert session_flags(frozenset(), adds) == {"cart:c", "cart:b"}


names = st.text(max_size=80)
events = st.fixed_dictionaries(
    {
        "signal": st.sampled_from(["product", "search", "form", "track", "scroll", "other"]),
        "action": st.sampled_from(["", "view", "add", "remove", "start", "submit", "abandon"]),
        "name": st.one_of(names, st.integers(), st.none()),
        "category": st.one_of(names, st.integers(), st.none()),
    }
)


@given(st.frozensets(st.text(max_size=20), max_size=5), st.lists(events, max_size=30))
def test_flags_stay_bounded_whatever_the_page_sends(
    start: frozenset[str], sent: list[dict[str, Any]]
) -> None:
    flags = session_flags(start, sent)
    added = flags - start
    assert all(len(f) <= MAX_FLAG and f.isprintable() and ";" not in f for f in added)
    assert len([f for f in added if f.startswith("cart:")]) <= MAX_CART
    assert len([f for f in flags if f.startswith("clicked:")]) <= 1 + len(
        [f for f in start if f.startswith("clicked:")]
    )
