"""Accounts, sessions, CSRF and roles: nothing without a login, no POST without the token."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cli.main import main
from compile import defaults
from origin.workspace.accounts import AccountError, Accounts
from origin.workspace.app import create_app
from origin.workspace.service import Workspace
from tests.origin.workspace.conftest import PASSWORD, Setup, csrf


def test_passwords_are_salted_scrypt_hashes(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path / "users.json")
    accounts.add("ann", "editor", PASSWORD)
    accounts.add("ben", "editor", PASSWORD)
    stored = json.loads((tmp_path / "users.json").read_text())
    assert PASSWORD not in (tmp_path / "users.json").read_text()
    assert stored["ann"]["salt"] != stored["ben"]["salt"]
    assert stored["ann"]["hash"] != stored["ben"]["hash"]
    assert accounts.verify("ann", PASSWORD) == accounts.get("ann")
    assert accounts.verify("ann", PASSWORD + "x") is None
    assert accounts.verify("nobody", PASSWORD) is None
    assert oct((tmp_path / "users.json").stat().st_mode & 0o777) == "0o600"


def test_a_bad_account_names_every_problem(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path / "users.json")
    with pytest.raises(AccountError) as caught:
        accounts.add("bad name", "admin", "short")
    message = str(caught.value)
    assert "name 'bad name'" in message and "role 'admin'" in message and "password" in message
    accounts.add("ann", "viewer", PASSWORD)
    with pytest.raises(AccountError, match="exists"):
        accounts.add("ann", "viewer", PASSWORD)
    assert accounts.add("ann", "approver", PASSWORD, replace=True).role == "approver"


PAGES = ["/", "/preview", "/results", "/history", "/audit", "/drafts/d-00000000"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_login(setup: Setup, path: str) -> None:
    answer = setup.client().get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


def test_every_post_needs_the_sessions_csrf_token(setup: Setup) -> None:
    client = setup.client("alice")
    token = csrf(client.get("/").text)
    assert client.post("/drafts", data={"title": "x"}).status_code == 403
    assert client.post("/drafts", data={"title": "x", "csrf": "forged"}).status_code == 403
    by_header = client.post("/drafts", data={"title": "x"}, headers={"x-csrf-token": token})
    assert by_header.status_code == 303  # htmx sends it as a header
    # another session's token is no good here
    other = setup.client("bob")
    assert other.post("/drafts", data={"title": "x", "csrf": token}).status_code == 403
    assert setup.ws.drafts.all()[0].author == "alice" and len(setup.ws.drafts.all()) == 1


def test_the_login_form_itself_needs_the_token(setup: Setup) -> None:
    client = setup.client()
    answer = client.post("/login", data={"name": "alice", "password": PASSWORD})
    assert answer.status_code == 403
    token = csrf(client.get("/login").text)
    wrong = client.post("/login", data={"csrf": token, "name": "alice", "password": "nope"})
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.text


def test_after_login_only_a_local_next_is_followed(setup: Setup) -> None:
    client = setup.client()
    token = csrf(client.get("/login").text)
    done = client.post(
        "/login",
        data={"csrf": token, "name": "vic", "password": PASSWORD, "next": "https://evil.test/"},
    )
    assert done.headers["location"] == "/"


def test_roles_decide_what_a_user_may_do(setup: Setup) -> None:
    viewer = setup.client("vic")
    token = csrf(viewer.get("/").text)
    refused = viewer.post("/drafts", data={"title": "x", "csrf": token})
    assert refused.status_code == 403 and "editor role" in refused.text
    assert viewer.get("/audit").status_code == 200  # viewers read everything
    sid = setup.ws.registry.current() or "none"
    back = viewer.post("/rollback", data={"csrf": token, "snapshot": sid, "why": "x"})
    assert back.status_code == 403


def test_signing_out_ends_the_session(setup: Setup) -> None:
    client = setup.client("alice")
    token = csrf(client.get("/").text)
    assert client.post("/logout", data={"csrf": token}).status_code == 303
    assert client.get("/").status_code == 303


def test_no_post_route_takes_a_request_without_the_token(setup: Setup) -> None:
    client = setup.client("bob")
    routes = client.app.routes  # type: ignore[attr-defined]
    posts = [r.path for r in routes if "POST" in (getattr(r, "methods", None) or ())]
    assert len(posts) >= 12
    for path in posts:
        url = path.replace(":int", "").format(
            draft="d-00000000", slot="cta", index="0", name="mobile"
        )
        if path == "/login":
            continue
        answer = client.post(url, data={"title": "x", "why": "x", "step": "submit"})
        assert answer.status_code == 403, path
        assert "CSRF" in answer.text


def test_the_stylesheet_and_htmx_are_served(setup: Setup) -> None:
    client = setup.client()
    assert "font-family" in client.get("/static/style.css").text
    htmx = client.get("/static/htmx.min.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text[:2000]


def test_pages_cannot_be_framed_cached_or_leak_a_referer(setup: Setup) -> None:
    for answer in (setup.client().get("/login"), setup.client("vic").get("/audit")):
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["cache-control"] == "no-store"
    cookie = setup.client("vic").get("/login")
    assert cookie.status_code == 200
    signed_in = setup.client()
    token = csrf(signed_in.get("/login").text)
    done = signed_in.post("/login", data={"csrf": token, "name": "vic", "password": PASSWORD})
    set_cookie = done.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie


def test_guessing_passwords_is_throttled_and_audited(setup: Setup) -> None:
    client = setup.client()
    token = csrf(client.get("/login").text)
    for _ in range(5):
        wrong = client.post("/login", data={"csrf": token, "name": "bob", "password": "guess"})
        assert wrong.status_code == 401
    right = client.post("/login", data={"csrf": token, "name": "bob", "password": PASSWORD})
    assert right.status_code == 429 and "Too many failed sign-ins" in right.text
    failed = [e for e in setup.ws.registry.audit_log() if e["action"] == "login-failed"]
    assert len(failed) == 5 and failed[0]["author"] == "bob"


def test_the_throttle_forgets_old_failures(tmp_path: Path) -> None:
    from origin.workspace.accounts import Throttle

    throttle = Throttle(tmp_path / "throttle.db", limit=2, window=60)
    throttle.fail(["a"], 0.0)
    throttle.fail(["a"], 10.0)
    assert throttle.wait(["a"], 20.0) == 40.0
    assert throttle.wait(["b"], 20.0) == 0.0
    assert throttle.wait(["a"], 61.0) == 0.0  # the first failure aged out
    assert stat.S_IMODE((tmp_path / "throttle.db").stat().st_mode) == 0o600


def test_failures_in_one_app_refuse_sign_in_in_another_on_the_same_home(setup: Setup) -> None:
    first = setup.client()
    token = csrf(first.get("/login").text)
    for _ in range(5):
        wrong = first.post("/login", data={"csrf": token, "name": "bob", "password": "guess"})
        assert wrong.status_code == 401
    # a restart: a new Workspace and a new app on the same home (as a second process would be)
    again = Workspace(setup.ws.registry, setup.ws.home, setup.ws.targets)
    second = TestClient(
        create_app(again, secret="other", personas=defaults.path("personas.toml")),
        base_url="http://127.0.0.1:8800",
        follow_redirects=False,
    )
    token = csrf(second.get("/login").text)
    refused = second.post("/login", data={"csrf": token, "name": "bob", "password": PASSWORD})
    assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text
    other = second.post("/login", data={"csrf": token, "name": "alice", "password": PASSWORD})
    assert other.status_code == 429  # the same client address: refused too
    assert (setup.ws.home / "throttle.db").exists()


def test_failures_recorded_by_another_process_count(setup: Setup) -> None:
    script = (
        "import sys, time; from pathlib import Path; "
        "from origin.workspace.accounts import Throttle; "
        "t = Throttle(Path(sys.argv[1])); "
        "[t.fail(['name:carol', 'address:203.0.113.9'], time.time()) for _ in range(5)]"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(setup.ws.home / "throttle.db")],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    client = setup.client()
    token = csrf(client.get("/login").text)
    refused = client.post("/login", data={"csrf": token, "name": "carol", "password": PASSWORD})
    assert refused.status_code == 429
    # an administrator unlocks the name (edgepick workspace user unlock carol)
    where = ["--registry", str(setup.ws.registry.root), "--home", str(setup.ws.home)]
    assert main(["workspace", "user", "unlock", "carol", *where]) == 0
    allowed = client.post("/login", data={"csrf": token, "name": "carol", "password": PASSWORD})
    assert allowed.status_code == 303
