"""Outcome ids, visitor-level conversions and vitals from the page's beacon (core.events)."""

from __future__ import annotations

import json
import math

from core import events

NOW = 1_790_000_000_000


def beacon(*items: dict[str, object]) -> bytes:
    return json.dumps({"events": list(items)}).encode()


def test_repeat_conversions_are_distinct_and_replays_are_the_same_event() -> None:
    body = beacon(
        {"type": "conversion", "decision": "d1-0", "value": 40, "id": "a1"},
        {"type": "conversion", "decision": "d1-0", "value": 75, "id": "b2"},
    )
    kept, errors = events.parse_beacon(body, "v1", NOW, frozenset({"d1-0"}))
    assert errors == [] and [e["id"] for e in kept] == ["d1-0:conversion:a1", "d1-0:conversion:b2"]
    again, _ = events.parse_beacon(body, "v1", NOW + 5000, frozenset({"d1-0"}))
    assert [e["id"] for e in again] == [e["id"] for e in kept]  # a replay: the same ids
    assert all(events.problem(e) is None for e in kept)


def test_outcomes_without_a_client_id_never_collide_across_beacons() -> None:
    body = beacon({"type": "conversion", "decision": "d1-0", "value": 40})
    first, _ = events.parse_beacon(body, "v1", NOW, frozenset({"d1-0"}))
    second, _ = events.parse_beacon(body, "v1", NOW + 1, frozenset({"d1-0"}))
    assert first[0]["id"] != second[0]["id"]


def test_a_conversion_without_a_decision_is_visitor_level() -> None:
    body = beacon(
        {"type": "conversion", "value": 19.5, "id": "p1"},
        {"type": "click", "id": "c1"},  # a click must name a decision it was on
        {"type": "conversion", "decision": "not-mine", "value": 1, "id": "p2"},
        {"type": "conversion", "value": 1, "id": "bad:id"},  # ':' would confuse the id scheme
    )
    kept, errors = events.parse_beacon(body, "v1", NOW, frozenset())
    assert [(e["id"], e["decision"], e["value"]) for e in kept] == [
        ("v1:conversion:p1", "", 19.5),
        (f"v1:conversion:t{NOW}.3", "", 1.0),
    ]
    assert len(errors) == 2 and all("decision" in e for e in errors)


def test_vitals_keep_issued_decisions_and_finite_metrics_only() -> None:
    item = {
        "type": "vitals",
        "id": "page1",
        "path": "/c/running",
        "decisions": ["d1-0", "d1-1", "someone-elses", "d1-0", 7],
        "lcp": 812.5,
        "cls": 0.04,
        "inp": 1e12,  # out of range
        "ttfb": "fast",
        "fcp": None,
        "dcl": 400,
    }
    kept, errors = events.parse_beacon(beacon(item) + b"", "v1", NOW, frozenset({"d1-0", "d1-1"}))
    assert errors == []
    (event,) = kept
    assert event["id"] == "v1:vitals:page1" and event["decisions"] == ["d1-0", "d1-1"]
    assert {k: event.get(k) for k in events.VITAL_METRICS} == {
        "lcp": 812.5,
        "inp": None,
        "cls": 0.04,
        "ttfb": None,
        "fcp": None,
        "dcl": 400.0,
        "load": None,
    }
    assert events.problem(event) is None
    nameless, errors = events.parse_beacon(beacon({**item, "id": ""}), "v1", NOW, frozenset())
    assert nameless == [] and "id" in errors[0]


def test_non_finite_numbers_never_pass_the_schema() -> None:
    # Python's json accepts NaN and Infinity: a collector batch could carry them
    body = b'{"events": [{"type": "vitals", "id": "p", "path": "/", "decisions": [], "lcp": NaN}]}'
    kept, _ = events.parse_beacon(body, "v1", NOW, frozenset())
    assert "lcp" not in kept[0]
    vitals = {"type": "vitals", "id": "v:vitals:p", "ts": NOW, "visitor": "v", "path": "/"}
    assert events.problem({**vitals, "decisions": [], "lcp": math.nan}) == (
        "lcp: a finite number in [0, 600000], or absent"
    )
    assert events.problem({**vitals, "decisions": [], "cls": -0.1}) is not None
    assert events.problem({**vitals, "decisions": [""]}) is not None
    conversion = {"type": "conversion", "id": "c", "ts": NOW, "visitor": "v", "decision": ""}
    assert events.problem({**conversion, "value": math.inf}) is not None
    assert events.problem({**conversion, "value": 12.0}) is None


def test_decisions_no_longer_in_the_cookie_are_accepted_when_shaped_like_the_edge_s() -> None:
    """The cookie keeps the latest decision per slot: an earlier page's is gone by the time its
    click or vitals arrive. The origin credits only this visitor's own exposures, so accepting
    any edge-shaped id credits nothing that is not theirs."""
    earlier = "0123456789abcdef-3"
    assert events.decision_shaped(earlier) and not events.decision_shaped("someone-elses")
    assert not events.decision_shaped("0123456789ABCDEF-3") and not events.decision_shaped("-3")
    body = beacon(
        {"type": "click", "decision": earlier, "id": "k1"},
        {"type": "click", "decision": "someone-elses", "id": "k2"},
        {"type": "vitals", "id": "pg", "path": "/", "decisions": [earlier, "junk", "d1"]},
    )
    kept, errors = events.parse_beacon(body, "v1", NOW, frozenset({"d1"}))
    assert [e["id"] for e in kept] == [f"{earlier}:click:k1", "v1:vitals:pg"]
    assert kept[1]["decisions"] == [earlier, "d1"] and len(errors) == 1
