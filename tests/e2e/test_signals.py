"""Issue 16: the page client's behavioural signals from a real browser (Chromium through
``wrangler dev``) to the collector's store, and from there to the features the origin publishes
in the user's profile (``edgepick inspect user``: flags the edge merges into the cookie, read by
audiences as ``flags`` and by linear policies as ``flag:F``). Consent denied: nothing is sent."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from origin.store import SqliteStore
from tests.e2e.conftest import BrowserRun, Loop

RECS = '[data-edgepick-slot="recs"][data-edgepick-decision]'
EMAIL = "runner@example.com"
TYPE_EMAIL = (
    "(() => { const i = document.querySelector('.newsletter input'); i.focus();"
    f" i.value = {EMAIL!r}; return document.activeElement === i; }})()"
)
SEARCH = (
    "(() => { const i = document.querySelector('nav input[type=search]'); i.focus();"
    " i.value = '  Trail RUNNING shoes, size 44 call 0176123456 '; return true; })()"
)
# scroll to the end once the page client runs (it defines ``edgepick`` and, in the same task,
# listens for scrolling), then let the scroll event be dispatched (a frame later) before the
# next step moves the page again: focusing a form's input scrolls it back into view
SCROLL = (
    "(() => { if (window.edgepick === undefined) return false;"
    " if (!window.__scrolledAt) { scrollTo(0, document.documentElement.scrollHeight);"
    " window.__scrolledAt = performance.now(); return false; }"
    " return performance.now() - window.__scrolledAt > 300; })()"
)


def signals_of(store: SqliteStore, visitor: str) -> list[dict[str, Any]]:
    return [s for s in store.signals() if s["visitor"] == visitor]


def test_each_signal_reaches_the_store_and_the_users_profile(
    loop: Loop, browser: Callable[..., BrowserRun]
) -> None:
    user = f"shopper-{secrets.token_hex(4)}"
    token = loop.identity_token(user)
    # about 20 beacon events in all: well within the edge's budget of 30 a minute per visitor
    run = browser(
        [
            {"goto": "/p/run-trail-4"},  # 0: a product page: its product is viewed
            {"waitFor": RECS},  # the page's decide call has set the cookie
            {"eval": f"edgepick.identify({token!r})", "thenCookieChange": "ep"},
            {"click": "[data-edgepick-cart=add]"},  # 3: add to cart, take it out, add it again
            {"click": "[data-edgepick-cart=remove]"},
            # the queue leaves within 2 s: wait for the beacon's answer to set the cookie
            {"click": "[data-edgepick-cart=add]", "thenCookieChange": "ep"},
            {"click": "[data-edgepick-track=size-guide]"},  # 6: a tracked link (navigates)
            {"waitFunction": "location.pathname === '/journal/size-guide'"},
            {"waitFunction": SCROLL},  # 8: read to the end
            {"eval": TYPE_EMAIL},  # 9: a form started...
            {"click": ".newsletter button"},  # ...and submitted (POST through the worker)
            {"waitFunction": "location.pathname === '/account/newsletter'"},
            {"waitFunction": SCROLL},  # 12: read to the end again
            {"eval": SEARCH},  # 13: a site search
            {"click": "nav button"},
            {"waitFunction": "location.pathname === '/search'"},
            {"goto": "/c/hiking"},  # 16: the last pages' signals leave as it is hidden
            {"cookies": True},
        ]
    )
    state = loop.state(run.cookie())
    assert state.user_id == user
    # within the session, the beacon put the signals' flags into the cookie
    # (core.session_signals): the next pages' audiences and features read them. Only the flags
    # whose beacon was answered before the next request left are certain to stay: the tracked
    # link's signal leaves as its page is hidden, racing the next page's own requests, whose
    # answers carry the cookie they were sent with (docs/signals.md); it is checked in the store
    assert "cart:running" in state.flags, state.flags

    def arrived(store: SqliteStore) -> list[dict[str, Any]] | None:
        found = signals_of(store, state.visitor_id)
        kinds = {(s["signal"], s["action"]) for s in found}
        wanted = {
            ("product", "view"),
            ("product", "add"),
            ("product", "remove"),
            ("track", ""),
            ("scroll", ""),
            ("form", "start"),
            ("form", "submit"),
            ("search", ""),
        }
        deep = sum(s["signal"] == "scroll" and s["depth"] >= 75 for s in found)
        return found if wanted <= kinds and deep >= 2 else None

    try:
        found = loop.wait_stored(arrived, f"every kind of signal from {state.visitor_id}")
    except AssertionError:
        store = SqliteStore(loop.db)
        try:
            got = sorted(
                (s["signal"], s["action"], s["path"]) for s in signals_of(store, state.visitor_id)
            )
        finally:
            store.close()
        raise AssertionError(f"stored: {got}; edge: {loop.health()['events']}") from None
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for s in found:
        by_kind.setdefault(s["signal"], []).append(s)
    products = sorted((p["name"], p["category"], p["action"]) for p in by_kind["product"])
    assert products == [
        ("run-trail-4", "running", "add"),
        ("run-trail-4", "running", "add"),
        ("run-trail-4", "running", "remove"),
        ("run-trail-4", "running", "view"),
    ]
    assert [t["name"] for t in by_kind["track"]] == ["size-guide"]
    # read through twice (focusing the search box may scroll a page partly too)
    assert sum(s["depth"] >= 75 for s in by_kind["scroll"]) >= 2
    assert all(0 < s["depth"] <= 100 for s in by_kind["scroll"])
    assert [s["query"] for s in by_kind["search"]] == ["trail running shoes size 44 call"]
    assert {f["name"] for f in by_kind["form"]} == {"newsletter"}
    assert not any(EMAIL in str(s) for s in found)  # never a field's value
    assert {s["path"] for s in by_kind["product"]} == {"/p/run-trail-4"}

    profile = loop.wait_inspect("user", user, lambda p: "searcher" in p["flags"])
    assert {
        "cart:running",  # added twice, removed once
        "interest:running",
        "clicked:size-guide",
        "engaged",
        "form:newsletter",
        "searcher",
    } <= set(profile["flags"])


def test_nothing_is_sent_without_consent(loop: Loop, browser: Callable[..., BrowserRun]) -> None:
    def count(store: SqliteStore) -> int:
        return store.count("signal")

    store = SqliteStore(loop.db)
    try:
        before = count(store)
    finally:
        store.close()
    host = loop.base.split("//", 1)[1].split(":")[0]
    run = browser(
        [
            {"goto": "/p/hike-summit-shell"},
            {"click": "[data-edgepick-cart=add]"},
            {"waitFunction": SCROLL},
            {"eval": SEARCH},
            {"click": "nav button"},
            {"waitFunction": "location.pathname === '/search'"},
            {"goto": "/"},
            {"eval": "edgepick.signal('track', {name: 'custom'}) === undefined"},
            {"goto": "/c/hiking"},
        ],
        cookies=[{"name": "ep_consent", "value": "no", "domain": host, "path": "/"}],
    )
    assert all(r.get("status", 200) == 200 for r in run.results)
    beacons = [r for r in run.requests if "/_edgepick/events" in r["url"]]
    # vitals may still be posted (the edge refuses them without a visitor cookie); no signal is
    # queued, so no beacon carries one and the store has none more
    store = SqliteStore(loop.db)
    try:
        assert count(store) == before
    finally:
        store.close()
    assert len(beacons) <= 4  # at most the four pages' vitals
