"""What an approver sees and may do: nobody approves a change of their own, and the review
names every change (audiences included) and shows changed content old against new."""

from __future__ import annotations

import re
from html import unescape

from starlette.testclient import TestClient

from tests.origin.workspace.conftest import Setup, csrf, rev


def _step(client: TestClient, setup: Setup, url: str, step: str, why: str = "ok") -> int:
    token = csrf(client.get(url).text)
    data = {"csrf": token, "rev": rev(setup), "step": step, "why": why}
    status: int = client.post(url + "/step", data=data).status_code
    return status


def test_an_approver_who_edited_a_draft_cannot_approve_it(setup: Setup) -> None:
    """alice (editor) starts a draft, bob (approver) edits it, alice submits: bob's approval is
    refused with a message saying why, and the page offers him no Approve; carol approves."""
    alice, bob, carol = setup.client("alice"), setup.client("bob"), setup.client("carol")
    token = csrf(alice.get("/").text)
    url = alice.post("/drafts", data={"csrf": token, "title": "Spring"}).headers["location"]
    btoken = csrf(bob.get(url).text)
    edited = bob.post(
        url + "/slots/cta/variants/new",
        data={
            "csrf": btoken,
            "rev": rev(setup),
            "id": "cta-bob",
            "content": "Bob's",
            "status": "active",
        },
    )
    assert edited.status_code == 303
    assert _step(alice, setup, url, "submit") == 303
    page = bob.get(url).text
    assert 'value="approve"' not in page
    token = csrf(page)
    refused = bob.post(
        url + "/step", data={"csrf": token, "rev": rev(setup), "step": "approve", "why": "mine"}
    )
    assert refused.status_code == 409
    assert "bob edited this draft, so cannot approve it" in refused.text
    assert setup.ws.drafts.all()[0].status == "review"
    assert 'value="approve"' in carol.get(url).text
    assert _step(carol, setup, url, "approve") == 303
    assert setup.ws.drafts.all()[0].status == "approved"
    assert setup.ws.drafts.all()[0].approver == "carol"


def test_an_editor_approving_gets_a_403_naming_the_role(setup: Setup) -> None:
    alice = setup.client("alice")
    token = csrf(alice.get("/").text)
    url = alice.post("/drafts", data={"csrf": token, "title": "x"}).headers["location"]
    assert _step(alice, setup, url, "submit") == 303
    token = csrf(alice.get(url).text)
    refused = alice.post(
        url + "/step", data={"csrf": token, "rev": rev(setup), "step": "approve", "why": "me"}
    )
    assert refused.status_code == 403 and "only an approver may approve" in refused.text


def test_an_audience_change_is_named_in_the_change_in_words_and_the_audit(setup: Setup) -> None:
    """staff (used by force rules of hero and landing) gets a new condition: the review says so,
    with the old and the new condition and who uses it; the audit entry says what changed."""
    alice = setup.client("alice")
    token = csrf(alice.get("/").text)
    url = alice.post("/drafts", data={"csrf": token, "title": "staff"}).headers["location"]
    saved = alice.post(
        url + "/audiences/staff",
        data={
            "csrf": token,
            "rev": rev(setup),
            "mode": "json",
            "json": '{"country": "SE"}',
            "description": "Employees: always the brand defaults",
        },
    )
    assert saved.status_code == 303, saved.text
    page = unescape(alice.get(url).text)
    assert "Nothing changes for visitors." not in page
    line = next(li for li in re.findall(r"<li>([^<]*)</li>", page) if "Audience staff" in li)
    assert "condition changed from" in line and '{"country": "SE"}' in line
    assert '"$inGroup": "staff_ids"' in line
    assert "the rules of headline, hero, landing use it" in line
    edits = [e for e in setup.ws.registry.audit_log() if e["action"] == "draft-edit"]
    assert "audience staff: condition" in edits[-1]["reason"]
    assert '-> {"country": "SE"}' in edits[-1]["reason"]
    # a new audience and a removed one are named too
    added = alice.post(
        url + "/audiences/new",
        data={
            "csrf": token,
            "rev": rev(setup),
            "name": "tablets",
            "mode": "json",
            "json": '{"device": "tablet"}',
        },
    )
    assert added.status_code == 303
    assert 'New audience tablets: {"device": "tablet"}.' in unescape(alice.get(url).text)
    added_audit = [e for e in setup.ws.registry.audit_log() if e["action"] == "draft-edit"][-1]
    assert added_audit["reason"] == 'audience tablets added: {"device": "tablet"}'
    removed = alice.post(
        url + "/audiences/returning/delete", data={"csrf": token, "rev": rev(setup)}
    )
    assert removed.status_code == 303
    assert "Audience returning removed (was " in unescape(alice.get(url).text)


def test_the_review_shows_old_and_new_content_escaped(setup: Setup) -> None:
    alice = setup.client("alice")
    token = csrf(alice.get("/").text)
    url = alice.post("/drafts", data={"csrf": token, "title": "copy"}).headers["location"]
    edit = {"csrf": token, "id": "cta-shop-now", "status": "active"}
    changed = alice.post(
        url + "/slots/cta/variants/0",
        data={**edit, "rev": rev(setup), "content": "Shop <b>now</b>\nToday only"},
    )
    assert changed.status_code == 303, changed.text
    added = alice.post(
        url + "/slots/cta/variants/new",
        data={
            **edit,
            "rev": rev(setup),
            "id": "cta-new",
            "content": "<script>x()</script>",
            "status": "draft",
        },
    )
    assert added.status_code == 303
    page = setup.client("bob").get(url).text
    assert "<script>x()" not in page and "Shop <b>now" not in page
    blocks = dict(
        re.findall(r'<div class="content-change" data-variant="([^"]+)">(.*?)</div>', page, re.S)
    )
    assert set(blocks) == {"cta/cta-shop-now", "cta/cta-new"}
    old = [
        unescape(x)
        for x in re.findall(r'<pre class="old">([^<]*)</pre>', blocks["cta/cta-shop-now"])
    ]
    new = [
        unescape(x)
        for x in re.findall(r'<pre class="new">([^<]*)</pre>', blocks["cta/cta-shop-now"])
    ]
    assert old == ["Shop now", ""] and new == ["Shop <b>now</b>", "Today only"]
    assert "(none: a new variant)" in blocks["cta/cta-new"]
    assert "&lt;script&gt;x()&lt;/script&gt;" in blocks["cta/cta-new"]
    # the sentence stays, the content is now next to it
    assert "cta: variant cta-shop-now has new content." in unescape(page)
