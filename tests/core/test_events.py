from __future__ import annotations

import json
from typing import Any

from core import events
from core.decide import decide
from core.features import RequestContext, VisitorState

NOW = 1_790_000_000


def test_exposures_are_valid_events(engine: Any) -> None:
    state = VisitorState("v-1", visits=3, page_views=9)
    ctx = RequestContext(device="mobile", country="FR")
    for d in decide(engine, state, ctx, NOW):
        event = events.exposure(d, state.visitor_id, engine.snapshot_id, NOW * 1000, 42, ctx)
        assert events.problem(event) is None, event
        assert event["id"] == d.decision_id and event["propensity"] == d.propensity


def test_problems_name_the_field() -> None:
    good = {"type": "click", "id": "e1", "visitor": "v", "ts": 1, "decision": "d1"}
    assert events.problem(good) is None
    assert events.problem([]) == "an event must be an object"
    assert events.problem({**good, "type": "hover"}).startswith("type:")  # type: ignore[union-attr]
    assert events.problem({**good, "ts": "now"}) == "ts: required, int"
    assert events.problem({**good, "decision": 5}) == "decision: required for click"
    conversion = {**good, "type": "conversion"}
    assert events.problem(conversion) == "value: required for conversion"


def test_signatures() -> None:
    body = events.encode_batch([{"a": 1}])
    sig = events.sign(body, b"secret")
    assert events.verify(body, sig, b"secret")
    assert not events.verify(body + b" ", sig, b"secret")
    assert not events.verify(body, sig, b"other")
    assert not events.verify(body, "", b"secret")


def test_beacon_keeps_valid_outcomes_for_issued_decisions_only() -> None:
    body = json.dumps(
        {
            "events": [
                {"type": "click", "decision": "d1", "id": "c1"},
                {"type": "conversion", "decision": "d1", "value": 59.5},
                {"type": "click", "decision": "someone-elses"},
                {"type": "hover", "decision": "d1"},
                {"type": "conversion", "decision": "d1", "value": -3},
                "junk",
            ]
        }
    ).encode()
    kept, errors = events.parse_beacon(body, "v-1", 123, frozenset({"d1"}))
    assert [(e["type"], e["value"]) for e in kept] == [("click", 0.0), ("conversion", 59.5)]
    assert kept[0]["id"] == "d1:click:c1" and kept[0]["visitor"] == "v-1"
    assert all(events.problem(e) is None for e in kept)
    assert len(errors) == 4 and "events[2].decision" in errors[0]
    assert events.parse_beacon(b"{", "v", 1, frozenset()) == ([], ["body: not JSON"])


def test_identify_needs_a_token_the_site_signed() -> None:
    from core import identity

    key = b"site-identity-key"
    good = identity.sign("user-1", 2_000_000_000, key)
    body = json.dumps(
        {
            "events": [
                {"type": "identify", "token": good},
                {"type": "identify", "user": "alice@example.com"},
                {"type": "identify", "token": identity.sign("user-2", 100, key)},  # expired
                {"type": "identify", "token": identity.sign("user-3", 2_000_000_000, b"other")},
                {"type": "identify", "token": "abc.é.x"},
            ]
        }
    ).encode()
    kept, errors = events.parse_beacon(body, "v-1", 1_790_000_000_000, frozenset(), key)
    assert [e["user"] for e in kept] == ["user-1"]
    assert len(errors) == 4 and all("identity token" in e for e in errors)
    assert events.parse_beacon(body, "v-1", 1_790_000_000_000, frozenset())[0] == []


def test_deeply_nested_bodies_are_refused_before_parsing() -> None:
    deep = b'{"events":' + b"[" * 16000 + b"]" * 16000 + b"}"
    assert not events.shallow(deep)
    kept, errors = events.parse_beacon(deep, "v", 1, frozenset())
    assert kept == [] and "nested deeper" in errors[0]
    assert events.shallow(b'{"events": [{"a": [1, {"b": 2}]}]}')


def test_signature_check_never_raises_on_odd_header_values() -> None:
    assert not events.verify(b"{}", "é\u2603", b"k")
