"""One history: config in git <-> the registry's config versions, through pull and push."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.main import main
from compile import defaults
from compile.site import load_toml
from origin.workspace.accounts import User
from origin.workspace.tomlout import dumps
from tests.origin.workspace.conftest import Setup

BOB = User("bob", "approver")


def _cli(setup: Setup, *args: str) -> int:
    return main([*args, "--registry", str(setup.ws.registry.root), "--home", str(setup.ws.home)])


def test_pull_edit_push_review_publish_pull_again(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pulled = tmp_path / "site.toml"
    assert _cli(setup, "pull", "-o", str(pulled)) == 0
    head = setup.ws.versions.head()
    text = pulled.read_text()
    assert text.startswith(f"# edgepick config version {head}")
    assert tomllib.loads(text) == load_toml(defaults.path("site.toml"))  # exactly the config
    edited = text.replace(
        'default = "cta-shop-now"', 'default = "cta-explore"  # explore tested better in May'
    )
    assert edited != text
    pulled.write_text(edited)
    assert _cli(setup, "push", str(pulled), "--author", "dev", "--message", "CTA default") == 0
    assert "in review" in capsys.readouterr().out
    (draft,) = setup.ws.drafts.all()
    assert draft.status == "review" and draft.author == "dev" and draft.base == head
    setup.ws.step(draft, BOB, "approve", "fine")
    setup.ws.publish(draft, BOB, "from git")
    again = tmp_path / "again.toml"
    assert _cli(setup, "pull", "-o", str(again)) == 0
    assert tomllib.loads(again.read_text()) == tomllib.loads(edited)
    # the file as pushed, comments and all, under a fresh header naming the new version
    assert again.read_text().startswith(f"# edgepick config version {setup.ws.versions.head()}")
    assert "# explore tested better in May" in again.read_text()
    assert again.read_text().count("edgepick config version") == 1
    assert again.read_text().count("Edit, commit") == 1
    # what was published is the pushed file, compiled: the edge gets the new default
    live = setup.ws.registry.current()
    cta = next(s for s in setup.ws.compile(tomllib.loads(edited)).slots if s.name == "cta")
    assert cta.default == "cta-explore" and live == setup.live()
    assert setup.ws.versions.of_snapshot(live or "") == setup.ws.versions.head()
    actions = [e["action"] for e in setup.ws.registry.audit_log()]
    assert actions[-5:] == [
        "draft-create",
        "draft-submit",
        "draft-approve",
        "publish",
        "draft-publish",
    ]


def test_a_stale_push_is_refused_and_a_bad_one_names_its_problems(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.toml"
    _cli(setup, "pull", "-o", str(old))
    draft = setup.ws.start(User("alice", "editor"), "meanwhile")
    config = {**draft.config, "site": {**draft.config["site"], "holdout": 0.2}}
    setup.ws.drafts.edit(draft, User("alice", "editor"), config, "holdout")
    setup.ws.step(draft, User("alice", "editor"), "submit", "")
    setup.ws.step(draft, BOB, "approve", "")
    setup.ws.publish(draft, BOB, "")
    old.write_text(old.read_text().replace("holdout = 0.05", "holdout = 0.1"))
    assert _cli(setup, "push", str(old)) == 1
    assert "pull again" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text(old.read_text().replace("holdout = 0.1", "holdout = 0.9"))
    assert _cli(setup, "push", str(bad), "--force") == 1
    assert "site.holdout: must be between 0.0 and 0.5 (got 0.9)" in capsys.readouterr().err
    same = tmp_path / "same.toml"
    _cli(setup, "pull", "-o", str(same))
    assert _cli(setup, "push", str(same)) == 0
    assert "nothing to push" in capsys.readouterr().out


def test_user_add_reads_the_password_from_stdin(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert _cli(setup, "workspace", "user", "add", "dora", "--role", "editor") == 0
    assert setup.ws.accounts.verify("dora", "a long enough password") == User("dora", "editor")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert _cli(setup, "workspace", "user", "add", "eve", "--role", "editor") == 1


TEXT = st.characters(codec="utf-8")  # any scalar value (no lone surrogates: TOML has none)
KEYS = st.text(TEXT, min_size=1, max_size=8)
SCALARS = (
    st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(TEXT, max_size=12)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=12,
)


@given(st.dictionaries(KEYS, VALUES, max_size=5))
def test_toml_out_reads_back_as_the_same_document(document: dict[str, object]) -> None:
    assert tomllib.loads(dumps(document, "a comment\nin two lines")) == document


def test_pull_a_draft(setup: Setup, tmp_path: Path) -> None:
    alice = User("alice", "editor")
    draft = setup.ws.start(alice, "holdout")
    config = {**draft.config, "site": {**draft.config["site"], "holdout": 0.25}}
    setup.ws.drafts.edit(draft, alice, config, "holdout")
    out = tmp_path / "draft.toml"
    assert _cli(setup, "pull", "--draft", draft.id, "-o", str(out)) == 0
    text = out.read_text()
    base = setup.ws.versions.head()
    first = text.splitlines()[0]
    assert first.startswith(f"# edgepick draft {draft.id} (draft), based on config version {base}")
    assert "edgepick config version" not in text  # it is not that version's config
    assert tomllib.loads(text) == config
    # pushing it back is checked against the version it is based on: stale once HEAD moves
    other = setup.ws.start(alice, "meanwhile")
    moved = {**other.config, "site": {**other.config["site"], "holdout": 0.3}}
    setup.ws.drafts.edit(other, alice, moved, "holdout")
    setup.ws.step(other, alice, "submit", "")
    setup.ws.step(other, BOB, "approve", "")
    setup.ws.publish(other, BOB, "")
    assert _cli(setup, "push", str(out), "--author", "dev") == 1
