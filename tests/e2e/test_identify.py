"""Issue 10, defects 1 and 2, through a real browser: what a visitor browsed reaches the origin
as page views, so the stitched profile says what the cookie says; long user ids are stitched."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from tests.e2e.conftest import BrowserRun, Loop

RECS = '[data-edgepick-slot="recs"][data-edgepick-decision]'
HERO = '[data-edgepick-slot="hero"][data-edgepick-decision]'


def test_stitched_profile_matches_the_cookie(
    loop: Loop, browser: Callable[..., BrowserRun]
) -> None:
    """Defect 1: three /c/running pages and /cart, then identify: the stitched profile has the
    cookie's stage, page views and running affinity (repeat views reuse the session's decisions,
    yet every page view reaches the origin)."""
    user = f"runner-{secrets.token_hex(4)}"
    token = loop.identity_token(user)
    run = browser(
        [
            {"goto": "/c/running"},
            {"goto": "/c/running"},
            {"goto": "/c/running"},
            {"goto": "/cart"},
            {"waitFor": RECS},  # the page's own decide call has set its cookie
            {"eval": f"edgepick.identify({token!r})", "thenCookieChange": "ep"},
            {"cookies": True},
        ]
    )
    assert all(r["status"] == 200 for r in run.results[:4])
    state = loop.state(run.cookie())
    running = dict(state.affinity)["running"]
    assert state.user_id == user and state.stage == "cart" and state.page_views == 4
    assert running == pytest.approx(3.0, abs=1e-3)

    profile = loop.wait_inspect(
        "user", user, lambda p: p["page_views"] >= state.page_views and p["stage"] != ""
    )
    assert profile["visitors"] == [state.visitor_id]
    assert profile["page_views"] == state.page_views == 4
    assert profile["visits"] == state.visits == 1
    assert profile["stage"] == state.stage == "cart"
    assert profile["affinity"]["running"] == pytest.approx(running, abs=1e-3)
    seen = loop.inspect("visitor", state.visitor_id)
    assert seen is not None and seen["user"] == user
    assert [v["path"] for v in seen["page_views"]] == ["/c/running"] * 3 + ["/cart"]
    assert [v["category"] for v in seen["page_views"]] == ["running"] * 3 + [""]

    # the sync job learns from the same store and publishes this user's profile
    done = loop.sync()
    assert "profiles" in done.stdout + done.stderr


def test_a_60_character_user_id_is_stitched(loop: Loop, browser: Callable[..., BrowserRun]) -> None:
    """Defect 2: an identify for a user id longer than 38 characters reaches the store, and the
    click sent in the same beacon batch is not lost with it."""
    user = "customer-" + secrets.token_hex(26)[:51]
    assert len(user) == 60
    token = loop.identity_token(user)
    beacon = (
        "(async () => { const hero = edgepick.decisions('hero')[0];"
        " const r = await fetch('/_edgepick/events', {method: 'POST', credentials: 'same-origin',"
        " headers: {'content-type': 'application/json'}, body: JSON.stringify({events: ["
        " {type: 'click', decision: hero, id: 'long-id-click'},"
        f" {{type: 'identify', token: {token!r}}}]}})}});"
        " return [hero, r.status, await r.json()]; })()"
    )
    run = browser([{"goto": "/"}, {"waitFor": HERO}, {"eval": beacon}, {"cookies": True}])
    hero, status, answer = run.value(2)
    assert status == 202 and answer["accepted"] == 2, answer
    state = loop.state(run.cookie())
    assert state.user_id == user

    profile = loop.wait_inspect("user", user, lambda p: bool(p["visitors"]))
    assert profile["user"] == user and profile["visitors"] == [state.visitor_id]
    decision = loop.wait_inspect("decision", hero, lambda d: bool(d["outcomes"]))
    assert decision["outcomes"] == [{"kind": "click", "value": 0.0}]
    assert decision["user"] == user
    seen = loop.inspect("visitor", state.visitor_id)
    assert seen is not None and seen["user"] == user
