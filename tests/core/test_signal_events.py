"""Browser signals from the page's beacon (core.events ``signal``): kept leniently, refused when
their kind or action is unknown, search queries normalized, nothing non-finite crosses."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from core import events

NOW = 1_790_000_000_000


def parsed(*items: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    body = json.dumps({"events": list(items)}, allow_nan=True).encode()
    return events.parse_beacon(body, "v1", NOW, frozenset())


def test_each_kind_of_signal_becomes_an_event() -> None:
    kept, errors = parsed(
        {"type": "signal", "signal": "scroll", "depth": 80, "id": "a", "path": "/c/running"},
        {"type": "signal", "signal": "track", "name": "size-guide", "id": "b", "path": "/"},
        {"type": "signal", "signal": "form", "name": "newsletter", "action": "start", "id": "c"},
        {"type": "signal", "signal": "search", "query": "Trail  SHOES!", "id": "d", "path": "/"},
        {
            "type": "signal",
            "signal": "product",
            "name": "run-trail-4",
            "category": "running",
            "action": "view",
            "rate": 0.5,
            "id": "e",
            "path": "/p/run-trail-4",
        },
    )
    assert errors == []
    assert [e["signal"] for e in kept] == ["scroll", "track", "form", "search", "product"]
    assert kept[0]["depth"] == 80 and kept[3]["query"] == "trail shoes"
    assert kept[4]["rate"] == 0.5 and kept[4]["category"] == "running"
    assert [e["id"] for e in kept][:2] == ["v1:signal:a", "v1:signal:b"]  # replays: same ids
    assert all(events.problem(e) is None and e["visitor"] == "v1" for e in kept)


def test_out_of_shape_fields_are_cut_or_refused() -> None:
    kept, errors = parsed(
        {"type": "signal", "signal": "scroll", "depth": float("nan"), "id": "a"},
        {"type": "signal", "signal": "scroll", "depth": 1e9, "id": "b"},
        {"type": "signal", "signal": "product", "name": "p", "action": "steal", "id": "c"},
        {"type": "signal", "signal": "keystrokes", "id": "d"},
        {"type": "signal", "signal": "search", "query": "12345678 a@b.c", "id": "e"},
        {"type": "signal", "signal": "track", "id": "f"},
        {"type": "signal", "signal": "track", "name": "x"},
        {"type": "signal", "signal": "product", "name": "p", "action": "add", "rate": 7, "id": "g"},
    )
    assert [e["depth"] for e in kept[:2]] == [0, 100]
    assert kept[2]["rate"] == 1.0 and len(kept) == 3
    assert len(errors) == 5
    assert any("action" in e for e in errors) and any("signal:" in e for e in errors)
    assert any("query: required" in e for e in errors)  # nothing left once the PII is dropped
    assert any(".id" in e for e in errors)


def test_a_search_query_is_never_stored_raw() -> None:
    assert events.normalize_query("Call 0176 12345678, me@example.com") == "call 0176"
    assert len(events.normalize_query("word " * 40)) <= events.MAX_QUERY
    unnormalized = {
        "type": "signal",
        "signal": "search",
        "query": "Raw Query",
        "id": "v1:signal:a",
        "ts": NOW,
        "visitor": "v1",
        "path": "/",
    }
    assert (events.problem(unnormalized) or "").startswith("query")


@given(st.text(max_size=400))
def test_normalizing_is_idempotent_and_bounded(text: str) -> None:
    once = events.normalize_query(text)
    assert events.normalize_query(once) == once and len(once) <= events.MAX_QUERY
    assert "@" not in once


@given(
    st.dictionaries(
        st.sampled_from(["signal", "name", "category", "action", "depth", "query", "rate", "id"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(2**70), 2**70),
            st.floats(allow_nan=True, allow_infinity=True),
            st.text(max_size=300),
        ),
    )
)
def test_any_beacon_signal_is_judged_without_raising(item: dict[str, Any]) -> None:
    kept, errors = parsed({"type": "signal", **item})
    assert len(kept) + len(errors) == 1
    for event in kept:
        assert events.problem(event) is None
