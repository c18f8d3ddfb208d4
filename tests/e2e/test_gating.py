"""Issue 10, defect 5, for real: requests that show nobody a personalized page log nothing: a
browser's speculative prefetch (``Sec-Purpose: prefetch``) and scripted HTTP clients."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.e2e.conftest import DESKTOP_UA, BrowserRun, Loop

RECS = '[data-edgepick-slot="recs"][data-edgepick-decision]'
HERO = '[data-edgepick-slot="hero"][data-edgepick-decision]'
SPECULATE = (
    "(() => { const s = document.createElement('script'); s.type = 'speculationrules';"
    " s.textContent = JSON.stringify({prefetch: [{source: 'list', urls: ['/?via=prefetch']}]});"
    " document.head.appendChild(s); return HTMLScriptElement.supports('speculationrules'); })()"
)
SCRIPTED = (
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Go-http-client/1.1",
    "Wget/1.21.3",
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_a_speculative_prefetch_logs_no_exposure(
    loop: Loop, browser: Callable[..., BrowserRun]
) -> None:
    """Chromium prefetches the home page (speculation rules) while the visitor reads a category
    page; the visitor never sees it: the home page's slots are not logged."""
    started = now_ms()
    run = browser(
        [
            {"goto": "/c/yoga"},
            {"waitFor": RECS},
            {"eval": SPECULATE},
            {"waitRequests": "via=prefetch", "count": 1},
            {"goto": "/c/hiking"},  # then a real page view, whose events arrive after
            {"waitFor": RECS},
            {"eval": "edgepick.decisions('recs')[0]"},
        ]
    )
    ended = now_ms()
    assert run.value(2) is True
    prefetch = next(r for r in run.requests if "via=prefetch" in r["url"])
    assert prefetch["headers"].get("sec-purpose", "").startswith("prefetch"), prefetch
    after = run.value(6)
    loop.wait_stored(
        lambda s: s.decision(after), "the exposure of the page view after the prefetch"
    )
    time.sleep(1.0)  # the prefetch was answered before that page view: its events would be in
    logged = loop.between(started, ended)
    home = [
        e for e in logged if e.get("path") == "/" or e.get("slot") in ("hero", "cta", "landing")
    ]
    assert home == [], home
    assert any(e.get("path") == "/c/yoga" for e in logged)  # what the visitor saw was logged


def test_scripted_clients_log_no_exposure(loop: Loop, browser: Callable[..., BrowserRun]) -> None:
    """curl, python-requests, Go and wget fetching the home page are not people."""
    started = now_ms()
    for agent in SCRIPTED:
        status, _headers, body = loop.http("/", {"User-Agent": agent})
        assert status == 200 and b"data-edgepick-slot" in body
    ended = now_ms()
    # a person's visit afterwards: once its events are stored, the clients' would be too
    run = browser([{"goto": "/"}, {"waitFor": HERO}, {"cookies": True}])
    loop.wait_events(loop.state(run.cookie()).visitor_id, exposures=4)
    time.sleep(1.0)
    assert loop.between(started, ended) == []


def test_a_browser_s_page_view_is_still_logged(
    loop: Loop, browser: Callable[..., BrowserRun]
) -> None:
    """The gate lets people through: the same page fetched by a browser's user agent is logged
    (the control for the two tests above)."""
    started = now_ms()
    status, _headers, _body = loop.http(
        "/", {"User-Agent": DESKTOP_UA, "Accept": "text/html", "Sec-Fetch-Dest": "document"}
    )
    ended = now_ms()
    assert status == 200
    found = loop.wait_stored(
        lambda s: [e for e in s.exposures(started, ended + 1) if e["slot"] == "hero"],
        "the hero exposure of a browser's page view",
    )
    assert len(found) == 1
