"""Issue 10, defect 7, for real: the worker's deliveries to the collector survive a refused
batch and a lost acknowledgement (at-least-once, stored once), and what an outage longer than
the retries costs is counted in the worker's health, not lost silently."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import BrowserRun, Loop

RECS = '[data-edgepick-slot="recs"][data-edgepick-decision]'
PAGE = [{"goto": "/"}, {"waitFor": RECS}, {"eval": "edgepick.decisions()"}, {"cookies": True}]


def delivery(loop: Loop) -> dict[str, Any]:
    events: dict[str, Any] = loop.health()["events"]
    return events


def settled(loop: Loop, timeout: float = 20.0) -> dict[str, Any]:
    """The worker's delivery counters once nothing is in flight (bounded)."""
    deadline = time.monotonic() + timeout
    while (found := delivery(loop))["pending"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert found["pending"] == 0, found
    return found


def test_a_refused_batch_is_sent_again(loop: Loop, browser: Callable[..., BrowserRun]) -> None:
    assert loop.gate is not None
    before = settled(loop)
    loop.gate.refuse = 1  # the next batch the worker sends is answered 503
    run = browser(PAGE)
    shown = run.value(2)
    visitor = loop.state(run.cookie()).visitor_id
    loop.wait_events(visitor, exposures=len(shown))
    after = settled(loop)
    assert loop.gate.refused == 1 and loop.gate.refuse == 0
    assert after["retried"] > before["retried"] and after["dropped"] == before["dropped"]
    seen = loop.inspect("visitor", visitor)
    assert seen is not None
    assert sorted(e["decision_id"] for e in seen["exposures"]) == sorted(shown)
    assert [v["path"] for v in seen["page_views"]] == ["/"]


def test_a_lost_acknowledgement_is_resent_and_stored_once(
    loop: Loop, browser: Callable[..., BrowserRun]
) -> None:
    assert loop.gate is not None
    before = loop.collector_health()["counters"]
    loop.gate.lose = 1  # the collector stores the next batch, its answer never arrives
    run = browser(PAGE)
    shown = run.value(2)
    visitor = loop.state(run.cookie()).visitor_id
    loop.wait_events(visitor, exposures=len(shown))
    settled(loop)
    after = loop.collector_health()["counters"]
    assert loop.gate.lost == 1
    assert after["duplicates"] > before.get("duplicates", 0)  # the resent batch, not stored again
    seen = loop.inspect("visitor", visitor)
    assert seen is not None
    ids = [e["decision_id"] for e in seen["exposures"]]
    assert sorted(ids) == sorted(shown) and len(seen["page_views"]) == 1


def test_an_outage_longer_than_the_retries_is_counted_as_dropped(
    loop: Loop, browser: Callable[..., BrowserRun]
) -> None:
    assert loop.gate is not None
    before = settled(loop)
    loop.gate.down = True  # connections to the collector are cut, unanswered
    try:
        run = browser(PAGE)
        shown = run.value(2)
        visitor = loop.state(run.cookie()).visitor_id
        after = settled(loop)
    finally:
        loop.gate.down = False
    assert loop.gate.cut > 0
    # every event of that page view was given up on, and the health says how many
    assert after["dropped"] - before["dropped"] >= len(shown) + 1  # + its page view
    assert after["shipped"] == before["shipped"]
    assert loop.inspect("visitor", visitor) is None  # nothing half-delivered
    # and delivery resumes with the collector
    again = browser(PAGE)
    loop.wait_events(loop.state(again.cookie()).visitor_id, exposures=len(again.value(2)))
