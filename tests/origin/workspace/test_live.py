"""What is actually live: the workspace reads its targets' pointers, and says so when they no
longer serve the snapshot the live config version was compiled to (``make dev`` restarted
republishes the sample fixture to the same local KV); drafts are compared with what is served."""

from __future__ import annotations

import re
from html import unescape

from core.snapshot import decode_header
from origin.publish import publish
from origin.workspace.accounts import User
from tests.origin.workspace.conftest import Setup, csrf

ALICE, BOB = User("alice", "editor"), User("bob", "approver")


def _publish_a_draft(setup: Setup) -> str:
    ws = setup.ws
    draft = ws.start(ALICE, "holdout")
    config = {**draft.config, "site": {**draft.config["site"], "holdout": 0.2}}
    ws.drafts.edit(draft, ALICE, config, "holdout 0.2")
    ws.step(draft, ALICE, "submit", "")
    ws.step(draft, BOB, "approve", "")
    return ws.publish(draft, BOB, "").header.id


def test_the_home_page_says_what_is_served_when_it_is_the_heads(setup: Setup) -> None:
    published = _publish_a_draft(setup)
    page = unescape(setup.client("vic").get("/").text)
    assert f"Snapshot {published} (dir:{setup.kv}) compiled from config version" in re.sub(
        r"</?code>", "", page
    )
    assert "live-warning" not in page


def test_a_republished_fixture_is_seen_and_drafts_compare_with_it(
    setup: Setup, fixture_blob: bytes
) -> None:
    ws = setup.ws
    published = _publish_a_draft(setup)
    fixture = decode_header(fixture_blob)[0].id
    # `make dev` restarted: the fixture is published again to the same KV (and registry)
    publish(fixture_blob, ws.targets, ws.registry, author="make dev")
    ws.forget_live()
    state = ws.live()
    assert state.serving == fixture and state.compiled == published and not state.matches
    bob = setup.client("bob")
    page = re.sub(r"</?code>", "", unescape(bob.get("/").text))
    assert "compiled from config version" not in page
    warning = next(w for w in state.warnings())
    assert fixture in warning and published in warning
    assert f"serves snapshot {fixture}, not {published}" in page
    assert f"Serve {published} again" in page  # an approver can put it back
    # a draft is compared with what visitors get now: the fixture (holdout 5% -> 20% again)
    draft = ws.start(ALICE, "compare")
    alice = setup.client("alice")
    shown = re.sub(r"</?code>", "", unescape(alice.get(f"/drafts/{draft.id}").text))
    assert f"Against snapshot {fixture}, served now (dir:{setup.kv})" in shown
    assert f"not {published}, the snapshot the draft's live config version was compiled to" in shown
    assert "Holdout: " in shown and "-> 20%" in shown
    assert "live-warning" in shown
    # one click serves the HEAD's snapshot again
    token = csrf(bob.get("/").text)
    back = bob.post(
        "/rollback", data={"csrf": token, "snapshot": published, "why": "make dev restarted"}
    )
    assert back.status_code == 303
    assert setup.live() == published and ws.live().matches
    assert "live-warning" not in bob.get("/").text


def test_a_target_moved_behind_the_registrys_back_is_reported(
    setup: Setup, fixture_blob: bytes
) -> None:
    """Another registry published to the same KV: the registry still points at the workspace's
    snapshot, the target serves another; the page names both."""
    ws = setup.ws
    published = _publish_a_draft(setup)
    fixture = decode_header(fixture_blob)[0].id
    (setup.kv / "snap" / "current").write_text(fixture)
    ws.forget_live()
    warnings = " ".join(ws.live().warnings())
    assert f"serves snapshot {fixture}, not {published}" in warnings
    assert f"The registry's pointer is {published}" in warnings
    page = unescape(setup.client("vic").get("/").text)
    assert "Serve " not in page  # a viewer is not offered the rollback
    assert fixture in page and published in page


def test_a_published_draft_still_shows_what_it_changed(setup: Setup) -> None:
    ws = setup.ws
    before = ws.registry.current()
    _publish_a_draft(setup)
    draft = ws.drafts.all()[0]
    assert draft.status == "published"
    page = re.sub(r"</?code>", "", unescape(setup.client("vic").get(f"/drafts/{draft.id}").text))
    assert "Nothing changes for visitors." not in page
    assert "Holdout: 5% -> 20%" in page
    assert f"Against snapshot {before}, live before this draft was published as" in page


def test_a_stale_draft_offers_no_submit_or_approve(setup: Setup) -> None:
    ws = setup.ws
    stale = ws.start(ALICE, "stale")
    ws.step(stale, ALICE, "submit", "")
    _publish_a_draft(setup)
    page = setup.client("carol").get(f"/drafts/{stale.id}").text
    assert "cannot be published" in page
    assert 'value="approve"' not in page and 'value="reject"' not in page
    mine = setup.client("alice").get(f"/drafts/{stale.id}").text
    assert 'value="discard"' in mine and 'value="submit"' not in mine
