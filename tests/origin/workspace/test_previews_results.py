"""Previews side by side (signed tokens for the edge), share links that expire, results."""

from __future__ import annotations

import re
import time
from html import unescape
from urllib.parse import parse_qs, urlsplit

from core import preview
from origin.store import SqliteStore
from origin.workspace.previews import ShareLinks
from tests.origin.helpers import exposure, outcome
from tests.origin.workspace.conftest import PREVIEW_KEY, Setup, rev

FRAME = re.compile(r'<iframe src="([^"]+)"')


def _frames(html: str) -> list[str]:
    return [unescape(u) for u in FRAME.findall(html)]


def test_two_personas_side_by_side_through_the_edge(setup: Setup) -> None:
    client = setup.client("vic")
    page = client.get("/preview?persona=loyal_runner&persona=cart_abandoner&hours=1")
    assert page.status_code == 200
    frames = _frames(page.text)
    assert len(frames) == 2
    now = int(time.time())
    for url, name in zip(frames, ("loyal_runner", "cart_abandoner"), strict=True):
        parts = urlsplit(url)
        assert parts.netloc == "127.0.0.1:9"  # the edge's URL, not the workspace
        token = parse_qs(parts.query)["edgepick_preview"][0]
        found, why = preview.decode(token, PREVIEW_KEY, now)
        assert why == "ok" and found is not None
        assert now + 3500 < found.expires <= now + 3600
        assert (
            found.persona["stage"] == {"loyal_runner": "consider", "cart_abandoner": "cart"}[name]
        )
    assert urlsplit(frames[1]).path == "/c/yoga"  # the persona's page


def test_a_draft_is_compared_per_persona(setup: Setup) -> None:
    alice = setup.client("alice")
    token = re.search(r'name="csrf" value="([^"]+)"', alice.get("/").text)
    assert token
    url = alice.post("/drafts", data={"csrf": token.group(1), "title": "x"}).headers["location"]
    rules = alice.post(
        url + "/slots/cta/rules",
        data={
            "csrf": token.group(1),
            "rev": rev(setup),
            "audience": "returning",
            "action": "force",
            "variants": "cta-shop-now",
        },
    )
    assert rules.status_code == 303
    page = alice.get(f"/preview?persona=loyal_runner&draft={url.rsplit('/', 1)[1]}")
    row = re.search(
        r"<tr class=\"changed\"><td>cta</td><td>([^<]+)</td><td>([^<]+)</td>", page.text
    )
    assert row is not None and row.group(1) != row.group(2) == "cta-shop-now"


def test_too_many_personas_or_a_bad_visitor_are_named(setup: Setup) -> None:
    client = setup.client("vic")
    names = "&".join(
        f"persona={n}"
        for n in ("loyal_runner", "cart_abandoner", "staff_member", "first_time_mobile")
    )
    five = client.get(f"/preview?{names}&visitor=%7B%22visits%22%3A%202%7D")
    assert "pick 1 to 4 personas" in unescape(five.text) and not _frames(five.text)
    bad = client.get('/preview?visitor={"visits": "many"}')
    assert "visitor.visits: expected an integer" in unescape(bad.text)


def test_a_share_link_works_signed_out_until_it_expires(setup: Setup) -> None:
    page = setup.client("vic").get("/preview?persona=loyal_runner&persona=staff_member")
    link = re.search(r'id="share-link" readonly value="([^"]+)"', page.text)
    assert link is not None
    path = urlsplit(unescape(link.group(1))).path
    outsider = setup.client()
    shared = outsider.get(path)
    assert shared.status_code == 200 and len(_frames(shared.text)) == 2
    assert "Drafts" not in shared.text  # no workspace navigation or data
    assert outsider.get(path[:-2] + "xx").status_code == 410
    expired = ShareLinks("test-secret").make({"a": {}}, int(time.time()) - 1)
    assert outsider.get(f"/share/{expired}").status_code == 410
    forged = ShareLinks("another-secret").make({"a": {}}, int(time.time()) + 99)
    assert outsider.get(f"/share/{forged}").status_code == 410


def test_results_show_intervals_and_the_holdout_lift(setup: Setup) -> None:
    store = SqliteStore(setup.tmp / "events.db")
    events = []
    for i in range(40):
        holdout = i % 4 == 0
        events.append(
            exposure(
                i,
                "cta",
                "cta-shop-now" if holdout or i % 2 else "cta-explore",
                visitor=f"v-{i}",
                reason="holdout" if holdout else "policy",
            )
        )
        if i % 3 == 0:
            events.append(outcome(f"d{i}-0", visitor=f"v-{i}"))
    store.append(events)
    store.close()
    page = setup.client("vic").get("/results")
    assert page.status_code == 200
    text = unescape(page.text)
    assert "30 personalized and 10 holdout visitors" in text
    assert re.search(r"<td>cta</td><td>cta-explore</td><td>\d+</td>", text)
    assert "[95% Wilson]" in text and "clicks per visitor" in text
