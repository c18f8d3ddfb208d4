"""The server-side events in the one schema (``core.events``): valid ones pass, anything a
backend could send is judged without an exception, and a login implies its identify."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from core.events import SERVER_TYPES, login_identify, problem

TS = 1_790_000_000_000


def why(event: dict[str, Any]) -> str:
    return problem(event) or ""


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=200),
    st.lists(st.integers(), max_size=3),
)


@given(
    st.sampled_from(SERVER_TYPES),
    st.dictionaries(
        st.sampled_from(["id", "ts", "visitor", "user", "value", "currency", "order", "plan"]),
        values,
    ),
)
def test_any_server_event_is_judged_without_raising(kind: str, fields: dict[str, Any]) -> None:
    why = problem({"type": kind, **fields})
    assert why is None or isinstance(why, str)


def test_valid_and_invalid_server_events() -> None:
    base = {"id": "order-1", "ts": TS, "user": "u-1"}
    assert problem({"type": "purchase", **base, "value": 59.9, "currency": "EUR"}) is None
    assert why({"type": "purchase", **base, "value": 1, "currency": "eur"}).startswith("currency")
    assert why({"type": "purchase", **base}).startswith("value")
    assert problem({"type": "login", **base}) is None
    assert why({"type": "login", "id": "l", "ts": TS}).startswith("user")
    assert problem({"type": "subscribe", **base, "plan": "gold"}) is None
    assert why({"type": "subscribe", **base, "value": 5.0}).startswith("currency")
    refund = {"type": "refund", **base, "value": 5.0, "currency": "EUR"}
    assert why(refund).startswith("order")
    assert problem({**refund, "order": "order-1"}) is None
    assert problem({"type": "purchase", **base, "value": float("inf"), "currency": "EUR"})


def test_a_login_naming_a_visitor_is_an_identify() -> None:
    login = {"type": "login", "id": "l-1", "ts": TS, "user": "u-1", "visitor": "v-1"}
    linked = login_identify(login)
    assert linked is not None and problem(linked) is None
    assert (linked["visitor"], linked["user"]) == ("v-1", "u-1")
    assert login_identify({**login, "visitor": ""}) is None
    assert login_identify({**login, "visitor": "v" * 100}) is None  # its id would be too long
