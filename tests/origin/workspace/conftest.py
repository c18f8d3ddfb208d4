"""A workspace on a temporary registry: the sample site seeded, four accounts, a dir target."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from compile import defaults
from compile.site import load_toml
from origin.publish import publish
from origin.registry import Registry
from origin.targets import DirTarget
from origin.workspace.app import create_app
from origin.workspace.service import Workspace

PASSWORD = "correct horse battery"
USERS = {"vic": "viewer", "alice": "editor", "bob": "approver", "carol": "approver"}
PREVIEW_KEY = b"workspace-preview-key"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Setup:
    ws: Workspace
    kv: Path
    tmp: Path

    def client(
        self,
        user: str | None = None,
        edge_url: str = "http://127.0.0.1:9",
        preview_key: bytes = PREVIEW_KEY,
    ) -> TestClient:
        """A browser-like client, signed in as ``user`` (None: signed out)."""
        app = create_app(
            self.ws,
            secret="test-secret",
            edge_url=edge_url,
            preview_key=preview_key,
            personas=defaults.path("personas.toml"),
            store=self.tmp / "events.db",
        )
        client = TestClient(app, base_url="http://127.0.0.1:8800", follow_redirects=False)
        if user is not None:
            page = client.get("/login")
            done = client.post(
                "/login", data={"csrf": csrf(page.text), "name": user, "password": PASSWORD}
            )
            assert done.status_code == 303, done.text
        return client

    def live(self) -> str:
        return (self.kv / "snap" / "current").read_text()


def rev(setup: Setup) -> str:
    """What a page of the newest draft carries in its forms' ``rev`` field (its step count)."""
    return str(len(setup.ws.drafts.all()[0].history))


def csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@pytest.fixture(scope="session")
def _hashed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """users.json made once (scrypt is deliberately slow), copied into each workspace."""
    from origin.workspace.accounts import Accounts

    path = tmp_path_factory.mktemp("accounts") / "users.json"
    accounts = Accounts(path)
    for name, role in USERS.items():
        accounts.add(name, role, PASSWORD)
    return path


@pytest.fixture
def setup(tmp_path: Path, _hashed: Path, fixture_blob: bytes) -> Iterator[Setup]:
    kv = tmp_path / "kv"
    ws = Workspace(
        Registry(tmp_path / "registry"),
        tmp_path / "home",
        [DirTarget(str(kv))],
        defaults.path("model.json"),
    )
    (ws.home / "users.json").write_bytes(_hashed.read_bytes())
    publish(fixture_blob, ws.targets, ws.registry, author="tests")  # the live site, as in e2e
    ws.seed(load_toml(defaults.path("site.toml")), "test", "site.toml")
    yield Setup(ws, kv, tmp_path)
