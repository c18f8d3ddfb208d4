from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    good = {"type": "click", "id": "e1", "visitor": "v", "ts": 1_790_000_000_000, "decision": "d1"}
    assert events.problem(good) is None
    assert events.problem([]) == "an event must be an object"
    assert events.problem({**good, "type": "hover"}).startswith("type:")  # type: ignore[union-attr]
    assert events.problem({**good, "ts": "now"}) == "ts: required, int"
    assert events.problem({**good, "ts": 1}) == "ts: milliseconds since 1970, from 2020 on"
    assert events.problem({**good, "visitor": "v" * 129}) == "visitor: at most 128 characters"
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
    kept, errors = events.parse_beacon(body, "v-1", 1_790_000_000_123, frozenset({"d1"}))
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


def test_exposures_carry_path_and_the_policys_distribution(engine: Any) -> None:
    ctx = RequestContext(path="/c/running", device="desktop")
    for d in decide(engine, VisitorState("v-2", visits=2, page_views=5), ctx, NOW):
        event = events.exposure(d, "v-2", engine.snapshot_id, NOW * 1000, None, ctx)
        assert events.problem(event) is None and event["path"] == "/c/running"
        assert "decision_us" not in event  # not measured: absent, never a fake 0
        if d.reason.value in ("policy", "fallback"):
            probs = dict(zip(event["eligible"], event["probs"], strict=True))
            assert abs(probs[d.arm] - d.propensity) <= 5e-6 * d.propensity  # 6 digits
        else:
            assert "eligible" not in event and "probs" not in event


def test_problem_refuses_non_finite_and_malformed_distributions(engine: Any) -> None:
    ctx = RequestContext()
    d = next(d for d in decide(engine, VisitorState("v-3"), ctx, NOW) if d.reason.value == "policy")
    good = events.exposure(d, "v-3", engine.snapshot_id, NOW * 1000, 12, ctx)
    assert events.problem(good) is None
    bad = {
        "probs": {**good, "probs": [float("nan")] * len(good["probs"])},
        "eligible": {**good, "eligible": good["eligible"][:-1]},
        "features": {**good, "features": [float("inf")]},
        "decision_us": {**good, "decision_us": -1},
        "propensity": {**good, "propensity": float("nan")},
    }
    for field, event in bad.items():
        assert (events.problem(event) or "").startswith(field), field
    conversion = {
        "type": "conversion",
        "id": "c",
        "visitor": "v",
        "ts": 1_790_000_000_000,
        "decision": "d",
    }
    assert events.problem({**conversion, "value": float("inf")}) == (
        "value: must be a finite number"
    )


def test_page_views_and_identifies_within_the_shared_limits() -> None:
    view = events.page_view("r1-view", "v-1", NOW * 1000, "/c/running", "running", "u-1", "s")
    assert events.problem(view) is None
    assert events.problem({**view, "path": "/" + "x" * events.MAX_PATH}) is not None
    assert events.problem({k: v for k, v in view.items() if k != "category"}) is not None
    longest = events.identify_event("0123456789abcdef", "u" * events.MAX_USER_ID, 1_790_000_000_000)
    assert events.problem(longest) is None and len(longest["id"]) <= events.MAX_ID
    too_long = {**longest, "user": "u" * (events.MAX_USER_ID + 1)}
    assert events.problem(too_long) == f"user: 1 to {events.MAX_USER_ID} characters"
    # the same user always gives the same id (idempotent), another user another id
    assert events.identify_event("v", "a", 1)["id"] == events.identify_event("v", "a", 1)["id"]
    assert events.identify_event("v", "a", 1)["id"] != events.identify_event("v", "a", 9)["id"]
    assert events.identify_event("v", "a", 1)["id"] != events.identify_event("v", "b", 1)["id"]


def test_shown_needs_this_decisions_receipt(engine: Any) -> None:
    ctx = RequestContext(path="/")
    (d,) = decide(engine, VisitorState("v-1"), ctx, NOW, ["recs"])
    exposure = events.exposure(d, "v-1", engine.snapshot_id, NOW * 1000, None, ctx)
    key = b"receipt-key"
    receipt = events.receipt(exposure, key)
    assert events.open_receipt(receipt, [b"old", key]) == exposure
    assert events.open_receipt(receipt, [b"old"]) is None
    assert events.open_receipt(receipt[:-1] + "A", [key]) in (None, exposure)  # tag bits
    body = json.dumps(
        {
            "events": [
                {"type": "shown", "decision": d.decision_id, "receipt": receipt},
                {"type": "shown", "decision": d.decision_id, "receipt": "x.y"},
                {"type": "shown", "decision": "not-issued", "receipt": receipt},
            ]
        }
    ).encode()
    kept, errors = events.parse_beacon(
        body, "v-1", 1_790_000_000_005, frozenset({d.decision_id}), b"", [key]
    )
    assert [(e["type"], e["id"], e["ts"]) for e in kept] == [
        ("exposure", d.decision_id, 1_790_000_000_005)
    ]
    assert len(errors) == 2 and "receipt" in errors[0] and "not a decision" in errors[1]
    other, _ = events.parse_beacon(
        body, "v-2", 1_790_000_000_005, frozenset({d.decision_id}), b"", [key]
    )
    assert other == []  # another visitor's receipt


def test_a_batch_that_holds_itself_is_a_clear_error() -> None:
    event: dict[str, object] = {"type": "click", "id": "x"}
    event["self"] = event
    with pytest.raises(ValueError, match="holds itself"):
        events.encode_batch([event])


@given(st.binary(max_size=200), st.binary(max_size=100))
def test_the_signature_is_hmac_sha256_in_hex(body: bytes, secret: bytes) -> None:
    assert events.sign(body, secret) == hmac.new(secret, body, hashlib.sha256).hexdigest()
