"""Draft -> review -> approve (another approver) -> publish -> rollback, all in the audit log."""

from __future__ import annotations

import json
import time

import pytest

from core.snapshot import decode_snapshot
from origin.workspace.accounts import User
from origin.workspace.drafts import Draft, WorkflowError
from tests.origin.workspace.conftest import Setup, csrf, rev

ALICE, BOB, CAROL = User("alice", "editor"), User("bob", "approver"), User("carol", "approver")
VARIANT = {"id": "cta-spring", "content": "Spring sale", "status": "active"}


def _with_variant(setup: Setup) -> str:
    """A draft by alice adding a cta variant, through the forms; its URL."""
    client = setup.client("alice")
    token = csrf(client.get("/").text)
    url: str = client.post("/drafts", data={"csrf": token, "title": "Spring CTA"}).headers[
        "location"
    ]
    added = client.post(
        url + "/slots/cta/variants/new", data={"csrf": token, "rev": rev(setup), **VARIANT}
    )
    assert added.status_code == 303
    return url


def test_the_whole_review_through_the_pages(setup: Setup) -> None:
    first = setup.live()
    url = _with_variant(setup)
    alice = setup.client("alice")
    token = csrf(alice.get(url).text)
    changes = alice.get(url).text
    assert "cta: new variant cta-spring." in changes  # the diff in words, before publishing
    assert (
        alice.post(
            url + "/step", data={"csrf": token, "rev": rev(setup), "step": "submit", "why": "ready"}
        ).status_code
        == 303
    )
    # alice (an editor) cannot approve; bob can, carol too; nobody approves their own
    refused = alice.post(
        url + "/step", data={"csrf": token, "rev": rev(setup), "step": "approve", "why": "me"}
    )
    assert refused.status_code == 403 and "only an approver may approve" in refused.text
    bob = setup.client("bob")
    btoken = csrf(bob.get(url).text)
    assert (
        bob.post(
            url + "/step",
            data={"csrf": btoken, "rev": rev(setup), "step": "approve", "why": "looks right"},
        ).status_code
        == 303
    )
    published = bob.post(
        url + "/step", data={"csrf": btoken, "rev": rev(setup), "step": "publish", "why": "spring"}
    )
    assert published.status_code == 303
    live = setup.live()
    assert live != first and setup.ws.registry.current() == live
    site = decode_snapshot(setup.ws.registry.get(live)).site
    cta = next(s for s in site.slots if s.name == "cta")
    assert "cta-spring" in [v.id for v in cta.variants]
    head = setup.ws.versions.head()
    assert setup.ws.versions.of_snapshot(live) == head
    # one click back: the edge and the config HEAD move back together
    seed = setup.ws.versions.log()[1]
    assert seed["action"] == "seed" and seed["snapshot"] == first
    back = bob.post(
        "/rollback", data={"csrf": btoken, "rev": rev(setup), "snapshot": first, "why": "too early"}
    )
    assert back.status_code == 303
    assert setup.live() == first and setup.ws.versions.head() == seed["id"]
    audit = bob.get("/audit").text
    for step in (
        "login",
        "draft-create",
        "draft-edit",
        "draft-submit",
        "draft-approve",
        "draft-publish",
        "workspace-rollback",
    ):
        assert f'<td class="action">{step}</td>' in audit, step
    assert "looks right" in audit and "spring" in audit and "too early" in audit


def test_rollback_moves_snapshot_and_config_back(setup: Setup) -> None:
    ws = setup.ws
    d1 = ws.start(ALICE, "one")
    _holdout(setup, d1, 0.1)
    ws.step(d1, ALICE, "submit", "")
    ws.step(d1, BOB, "approve", "ok")
    one = ws.publish(d1, BOB, "first").header.id
    v1 = ws.versions.head()
    d2 = ws.start(ALICE, "two")
    _holdout(setup, d2, 0.2)
    ws.step(d2, ALICE, "submit", "")
    ws.step(d2, CAROL, "approve", "ok")
    ws.publish(d2, CAROL, "second")
    assert ws.versions.head() != v1
    bob = setup.client("bob")
    token = csrf(bob.get("/history").text)
    assert (
        bob.post(
            "/rollback", data={"csrf": token, "rev": rev(setup), "snapshot": one, "why": "oops"}
        ).status_code
        == 303
    )
    assert setup.live() == one and ws.registry.current() == one
    assert ws.versions.head() == v1
    assert ws.registry.overrides.pin is not None  # sync will not undo it
    actions = [e["action"] for e in ws.registry.audit_log()]
    assert actions[-3:] == ["rollback", "pin", "workspace-rollback"]
    # the next workspace publish lifts the pin
    d3 = ws.start(ALICE, "three")
    ws.step(d3, ALICE, "submit", "")
    ws.step(d3, BOB, "approve", "")
    ws.publish(d3, BOB, "")
    assert ws.registry.overrides.pin is None


def _holdout(setup: Setup, draft: Draft, value: float) -> None:
    config = {**draft.config, "site": {**draft.config["site"], "holdout": value}}
    setup.ws.drafts.edit(draft, ALICE, config, f"holdout {value}")


def test_the_author_never_approves_and_stale_drafts_never_publish(setup: Setup) -> None:
    ws = setup.ws
    own = ws.start(BOB, "bob's")
    _holdout(setup, own, 0.2)
    ws.step(own, BOB, "submit", "")
    with pytest.raises(WorkflowError, match="author cannot approve"):
        ws.step(own, BOB, "approve", "")
    with pytest.raises(WorkflowError, match="it is review"):
        ws.publish(own, BOB, "")
    stale = ws.start(ALICE, "stale")
    ws.step(stale, ALICE, "submit", "")
    ws.step(stale, BOB, "approve", "")
    ws.step(own, CAROL, "approve", "")
    ws.publish(own, CAROL, "")
    with pytest.raises(WorkflowError, match="live config changed"):
        ws.publish(stale, BOB, "")
    with pytest.raises(WorkflowError, match="only an approver may publish"):
        ws.publish(stale, ALICE, "")
    late = ws.start(ALICE, "late")  # started from the old HEAD like stale, submitted now
    late.base = stale.base
    with pytest.raises(WorkflowError, match="can only be discarded"):
        ws.step(late, ALICE, "submit", "")  # a page opened before HEAD moved may still post
    with pytest.raises(WorkflowError, match="can only be discarded"):
        ws.step(stale, CAROL, "approve", "")
    ws.step(late, ALICE, "discard", "stale")  # discarding stays possible


def test_role_refusals_read_with_their_article() -> None:
    from origin.workspace.drafts import a_role

    assert [a_role(r) for r in ("viewer", "editor", "approver")] == [
        "a viewer",
        "an editor",
        "an approver",
    ]


def test_a_scheduled_publish_happens_when_due(setup: Setup) -> None:
    ws = setup.ws
    draft = ws.start(ALICE, "later")
    ws.step(draft, ALICE, "submit", "")
    ws.step(draft, BOB, "approve", "")
    when = int(time.time()) + 3600
    ws.step(draft, BOB, "schedule", "monday morning", when)
    assert ws.publish_due(when - 1) == []
    before = ws.registry.current()
    assert ws.publish_due(when) == [draft.id]
    assert ws.registry.current() != before
    assert ws.drafts.get(draft.id).status == "published"
    assert ws.publish_due(when + 10) == []
    with pytest.raises(WorkflowError, match="future"):
        other = ws.start(ALICE, "x")
        ws.step(other, ALICE, "submit", "")
        ws.step(other, BOB, "approve", "")
        ws.step(other, BOB, "schedule", "", int(time.time()) - 5)


def test_a_failing_scheduled_publish_is_logged_and_unscheduled(setup: Setup) -> None:
    ws = setup.ws
    draft = ws.start(ALICE, "stale later")
    ws.step(draft, ALICE, "submit", "")
    ws.step(draft, BOB, "approve", "")
    when = int(time.time()) + 3600
    ws.step(draft, BOB, "schedule", "", when)
    other = ws.start(ALICE, "first")
    _holdout(setup, other, 0.3)
    ws.step(other, ALICE, "submit", "")
    ws.step(other, CAROL, "approve", "")
    ws.publish(other, CAROL, "")
    assert ws.publish_due(when) == []
    assert ws.drafts.get(draft.id).publish_at == 0
    failed = [e for e in ws.registry.audit_log() if e["action"] == "draft-schedule-failed"]
    assert failed and "live config changed" in failed[0]["reason"]


def test_a_stale_page_cannot_edit_or_approve(setup: Setup) -> None:
    """An approver's page of a draft that was reopened and changed since cannot approve it,
    and an edit from a page older than the last edit (indexes may have moved) is refused."""
    url = _with_variant(setup)
    alice = setup.client("alice")
    token = csrf(alice.get(url).text)
    stale = rev(setup)
    alice.post(url + "/step", data={"csrf": token, "rev": stale, "step": "submit", "why": ""})
    bob = setup.client("bob")
    btoken = csrf(bob.get(url).text)
    seen = rev(setup)  # bob's page
    alice.post(url + "/step", data={"csrf": token, "rev": seen, "step": "reopen", "why": ""})
    alice.post(url + "/slots/cta/variants/0/delete", data={"csrf": token, "rev": rev(setup)})
    alice.post(url + "/step", data={"csrf": token, "rev": rev(setup), "step": "submit"})
    approve = bob.post(url + "/step", data={"csrf": btoken, "rev": seen, "step": "approve"})
    assert approve.status_code == 409 and "changed since this page was loaded" in approve.text
    assert setup.ws.drafts.all()[0].status == "review"
    old = alice.post(url + "/holdout", data={"csrf": token, "rev": stale, "holdout": "0.1"})
    assert old.status_code == 409


def test_the_app_publishes_a_due_draft_by_itself(setup: Setup) -> None:
    """The app's background task (every ``tick`` seconds) publishes what is due."""
    from starlette.testclient import TestClient

    from compile import defaults
    from origin.workspace.app import create_app

    ws = setup.ws
    draft = ws.start(ALICE, "due")
    _holdout(setup, draft, 0.15)
    ws.step(draft, ALICE, "submit", "")
    ws.step(draft, BOB, "approve", "")
    ws.step(draft, BOB, "schedule", "", int(time.time()) + 3600)
    due = ws.drafts.get(draft.id)
    due.publish_at = int(time.time()) - 1  # as if the hour had passed
    ws.drafts.save(due)
    app = create_app(ws, secret="s", personas=defaults.path("personas.toml"), tick=0.05)
    with TestClient(app):  # runs the lifespan, hence the scheduler
        deadline = time.monotonic() + 30
        while ws.drafts.get(draft.id).status != "published":
            assert time.monotonic() < deadline, "the scheduler did not publish the due draft"
            time.sleep(0.05)
    assert ws.registry.current() == ws.drafts.get(draft.id).snapshot == setup.live()


def test_a_discarded_draft_goes_no_further(setup: Setup) -> None:
    ws = setup.ws
    draft = ws.start(ALICE, "never mind")
    ws.step(draft, ALICE, "submit", "")
    ws.step(draft, ALICE, "discard", "wrong idea")
    with pytest.raises(WorkflowError, match="it is discarded"):
        ws.step(draft, BOB, "approve", "")
    with pytest.raises(WorkflowError, match="it is discarded"):
        ws.publish(draft, BOB, "")
    with pytest.raises(WorkflowError, match="only an editor may discard"):
        ws.step(ws.start(ALICE, "x"), User("vic", "viewer"), "discard", "")
    home = setup.client("vic").get("/").text
    assert home.index("never mind") > home.index(">x<")  # listed after the open ones


def test_learned_numbers_of_removed_variants_are_dropped(setup: Setup) -> None:
    """The model names hero-running's cold-start share and hl-fast-shipping's weights, overall
    and per segment: a draft that removes those variants still compiles and publishes."""
    from origin.workspace.editing import delete_variant

    ws = setup.ws
    model = ws.model(ws.head()[1]) or {}
    assert "hero-running" in model["slots"]["hero"]["cold_start"]
    assert "hl-fast-shipping" in model["slots"]["headline"]["segments"]["mobile"]
    draft = ws.start(ALICE, "fewer")
    hero = [v["id"] for v in draft.config["slots"]["hero"]["variants"]]
    headline = [v["id"] for v in draft.config["slots"]["headline"]["variants"]]
    config = delete_variant(draft.config, "hero", hero.index("hero-running"))
    config = delete_variant(config, "headline", headline.index("hl-fast-shipping"))
    ws.drafts.edit(draft, ALICE, config, "fewer variants")
    ws.step(draft, ALICE, "submit", "")
    ws.step(draft, BOB, "approve", "")
    assert "hero: variant hero-running removed; nobody sees it any more." in ws.changes(draft)
    published = ws.publish(draft, BOB, "")
    site = decode_snapshot(ws.registry.get(published.header.id)).site
    assert "hero-running" not in [v.id for s in site.slots for v in s.variants]
    # the numbers it was compiled with are kept as its model: the next publish builds on them
    saved = json.loads((ws.registry.root / "models" / f"{published.header.id}.json").read_text())
    assert "hl-fast-shipping" not in saved["slots"]["headline"]["segments"]["mobile"]
    assert saved["slots"]["headline"]["weights"]["hl-free-returns"] == 0.42
    assert ws.model(ws.drafts.get(draft.id).config) == saved
