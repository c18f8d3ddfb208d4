"""Issue 10, defect 6, through a real browser: a preview shows exactly the forced variants on
every slot (page-level, inline, async), logs nothing, sets no cookie and says it is a preview;
an invalid token says so on the page."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import BrowserRun, Loop

HERO = '[data-edgepick-slot="hero"]'
RECS = '[data-edgepick-slot="recs"]'
RECS_FILLED = (
    "!document.querySelector('[data-edgepick-slot=\"recs\"]').hasAttribute('data-edgepick-async')"
)
FORCED = {"landing": "home-outdoor", "hero": "hero-evening-edit", "recs": "recs-kids"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_a_preview_is_exact_unlogged_cookieless_and_marked(
    loop: Loop, browser: Callable[..., BrowserRun]
) -> None:
    token = loop.preview_token(FORCED, {"visits": 3, "affinity": {"running": 5}})
    started = now_ms()
    run = browser(
        [
            {"goto": f"/?edgepick_preview={token}"},
            {"waitFunction": RECS_FILLED},
            {"text": HERO},
            {"text": RECS},
            {"text": "body"},
            {"cookies": True},
        ]
    )
    ended = now_ms()
    page = run.results[0]
    assert page["status"] == 200 and page["headers"].get("x-edgepick-preview") == "1"
    body = run.value(4)
    assert "outdoor landing" in body  # the page-level variant's page, same URL
    assert "The evening edit" in run.value(2)  # inline, a draft variant
    assert "Junior Rain Jacket" in run.value(3)  # the async slot, below the fold
    assert run.cookie() is None  # no visitor cookie
    assert "preview" in body.lower()  # visibly marked on the page
    # what the origin got meanwhile: nothing (a later real visit's events prove delivery works)
    after = browser(
        [{"goto": "/"}, {"waitFor": HERO + "[data-edgepick-decision]"}, {"cookies": True}]
    )
    loop.wait_events(loop.state(after.cookie()).visitor_id, exposures=4)
    time.sleep(1.0)
    assert loop.between(started, ended) == []


@pytest.mark.parametrize("kind", ["tampered", "expired", "foreign"])
def test_an_invalid_preview_token_says_so(
    loop: Loop, browser: Callable[..., BrowserRun], kind: str
) -> None:
    good = loop.preview_token({"recs": "recs-kids"})
    token = {
        "tampered": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
        "expired": loop.preview_token({"recs": "recs-kids"}, ttl=-60),
        "foreign": loop.preview_token({"recs": "recs-kids"}, key="another-sites-preview-key"),
    }[kind]
    run = browser([{"goto": f"/?edgepick_preview={token}"}, {"text": "body"}])
    assert run.results[0]["status"] == 200
    text = run.value(1).lower()
    assert "preview" in text, text  # the original page never mentions previews
    # ... and that this token did not work (refused, invalid, expired: any plain wording)
    assert any(word in text for word in ("refused", "invalid", "expired", "not valid")), text
