"""A real browser through the real edge: a click on a filled slot reaches the origin, credited to
the decision the page showed, with the page it was shown on."""

from __future__ import annotations

from collections.abc import Callable

from tests.e2e.conftest import BrowserRun, Loop

RECS = '[data-edgepick-slot="recs"][data-edgepick-decision]'


def test_click_on_a_filled_slot_is_credited_with_the_page_path(
    loop: Loop, browser: Callable[..., BrowserRun]
) -> None:
    run = browser(
        [
            {"goto": "/"},
            {"waitFor": RECS},  # the home page's below-fold slot, filled by the page client
            {"goto": "/c/running"},
            {"waitFor": RECS},
            {"attr": RECS, "name": "data-edgepick-decision"},
            {"click": RECS, "thenRequest": "/_edgepick/events"},
            {"cookies": True},
        ]
    )
    assert run.results[0]["status"] == 200 and run.results[2]["status"] == 200
    clicked = run.value(4)
    visitor = loop.state(run.cookie()).visitor_id
    loop.wait_events(visitor, outcomes=1)

    decision = loop.inspect("decision", clicked)
    assert decision is not None, f"decision {clicked} was never stored\n{loop.logs()}"
    assert decision["visitor"] == visitor and decision["slot"] == "recs"
    assert decision["path"] == "/c/running"  # the page the slot was shown on
    assert decision["outcomes"] == [{"kind": "click", "value": 0.0}]
    assert 0.0 < decision["propensity"] <= 1.0


def test_inspect_visitor_shows_every_page_s_exposures(
    loop: Loop, browser: Callable[..., BrowserRun]
) -> None:
    run = browser(
        [
            {"goto": "/"},
            {"waitFor": RECS},
            {"eval": "edgepick.decisions()"},
            {"goto": "/c/running"},
            {"waitFor": RECS},
            {"eval": "edgepick.decisions()"},
            {"cookies": True},
        ]
    )
    home, category = set(run.value(2)), set(run.value(5))
    visitor = loop.state(run.cookie()).visitor_id
    shown = home | category
    loop.wait_events(visitor, exposures=len(shown))

    found = loop.inspect("visitor", visitor)
    assert found is not None and found["visitor"] == visitor and found["user"] == ""
    stored = {e["decision_id"]: e for e in found["exposures"]}
    # every decision marked on either page was logged once, with the page it was first shown on
    assert shown <= set(stored), (shown - set(stored), stored)
    assert {stored[d]["slot"] for d in home} >= {"headline", "hero", "cta", "recs"}
    assert {stored[d]["path"] for d in home} == {"/"}
    assert {stored[d]["path"] for d in category - home} == {"/c/running"}
