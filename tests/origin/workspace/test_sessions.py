"""Sessions end when they should: sign-out, a password reset, a new role, a removed account
(each checked on the next request, in every browser the account signed in from)."""

from __future__ import annotations

import io

import pytest
from starlette.testclient import TestClient

from cli.main import main
from origin.workspace.accounts import User
from tests.origin.workspace.conftest import PASSWORD, Setup, csrf


def _signed_in(client: TestClient) -> bool:
    return bool(client.get("/").status_code == 200)


def _cli(setup: Setup, *args: str) -> int:
    where = ["--registry", str(setup.ws.registry.root), "--home", str(setup.ws.home)]
    code: int = main(["workspace", "user", *args, *where])
    return code


def test_signing_out_ends_every_session_of_the_account(setup: Setup) -> None:
    here, there, other = setup.client("alice"), setup.client("alice"), setup.client("bob")
    copied = dict(here.cookies)
    assert _signed_in(here) and _signed_in(there)
    out = here.post("/logout", data={"csrf": csrf(here.get("/").text)})
    assert out.status_code == 303
    assert not _signed_in(here) and not _signed_in(there)
    stolen = setup.client()
    stolen.cookies.update(copied)  # the cookie from before the sign-out
    assert not _signed_in(stolen)
    assert stolen.post("/drafts", data={"title": "x", "csrf": "x"}).status_code in (303, 403)
    assert _signed_in(other)  # another account's sessions go on
    again = setup.client("alice")  # and alice may sign in again
    assert _signed_in(again)
    assert any(e["action"] == "logout" for e in setup.ws.registry.audit_log())


def test_a_password_reset_ends_the_sessions(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = setup.client("alice")
    assert _signed_in(alice)
    monkeypatch.setattr("sys.stdin", io.StringIO("a brand new password\n"))
    assert _cli(setup, "add", "alice", "--role", "editor", "--replace") == 0
    assert not _signed_in(alice)
    fresh = setup.client()
    token = csrf(fresh.get("/login").text)
    old = fresh.post("/login", data={"csrf": token, "name": "alice", "password": PASSWORD})
    assert old.status_code == 401
    new = fresh.post(
        "/login", data={"csrf": token, "name": "alice", "password": "a brand new password"}
    )
    assert new.status_code == 303 and _signed_in(fresh)


def test_a_new_role_ends_the_sessions(setup: Setup) -> None:
    bob = setup.client("bob")
    assert _signed_in(bob)
    assert _cli(setup, "role", "bob", "viewer") == 0
    assert not _signed_in(bob)
    again = setup.client("bob")
    assert setup.ws.accounts.get("bob") == User("bob", "viewer")
    assert (
        again.post("/drafts", data={"csrf": csrf(again.get("/").text), "title": "x"}).status_code
        == 403
    )
    assert _cli(setup, "role", "nobody", "viewer") == 1


def test_a_removed_user_is_signed_out_and_cannot_sign_in(setup: Setup) -> None:
    carol = setup.client("carol")
    assert _signed_in(carol)
    assert _cli(setup, "remove", "carol") == 0
    assert setup.ws.accounts.get("carol") is None
    assert not _signed_in(carol)
    fresh = setup.client()
    token = csrf(fresh.get("/login").text)
    refused = fresh.post("/login", data={"csrf": token, "name": "carol", "password": PASSWORD})
    assert refused.status_code == 401
    assert _cli(setup, "remove", "carol") == 1  # no such user any more
    assert any(
        e["action"] == "user-remove" and e["user"] == "carol" for e in setup.ws.registry.audit_log()
    )


def test_a_user_added_again_does_not_revive_old_sessions(setup: Setup) -> None:
    vic = setup.client("vic")
    copied = dict(vic.cookies)
    setup.ws.accounts.remove("vic")
    setup.ws.accounts.add("vic", "viewer", PASSWORD)
    stolen = setup.client()
    stolen.cookies.update(copied)
    assert not _signed_in(stolen)
