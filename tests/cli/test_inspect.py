"""``edgepick inspect``: what the origin stored, from events the edge handler really emitted
(the request logic under CPython with in-memory bindings, ``tests/edge/test_handler.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from compile.site import compile_site, load_toml
from core import events, identity
from origin import inspect
from origin.stitch import profile_for
from origin.store import SqliteStore
from tests.conftest import FIXTURES
from tests.edge.helpers import decision_marks
from tests.edge.test_handler import Edge

UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0 Safari/537.36"
)
SIGNALS = compile_site(load_toml(FIXTURES / "site.toml")).signals


def shipped(edge: Edge) -> list[dict[str, Any]]:
    """Every event the edge shipped, each batch's signature checked."""
    found: list[dict[str, Any]] = []
    for _url, body, headers in edge.io.shipped:
        assert events.verify(body, headers[events.SIGNATURE_HEADER], b"events-secret")
        found.extend(json.loads(body)["events"])
    return found


def beacon(edge: Edge, *items: dict[str, Any]) -> dict[str, Any]:
    reply = edge.request(
        "/_edgepick/events", method="POST", body=json.dumps({"events": items}).encode()
    )
    assert reply.status == 202
    result: dict[str, Any] = json.loads(reply.body)  # type: ignore[arg-type]
    return result


@pytest.fixture
def recorded(fixture_blob: bytes, tmp_path: Path) -> dict[str, Any]:
    """A visitor browses, clicks the hero, converts twice, identifies as user-9; the store holds
    exactly what the edge shipped."""
    edge = Edge(fixture_blob)
    home = edge.request("/", user_agent=UA)
    html: str = home.page.handle  # type: ignore[union-attr]
    hero = next(
        mark
        for mark in decision_marks(html)
        if f'data-edgepick-slot="hero" data-edgepick-decision="{mark}"' in html
    )
    edge.request("/c/running", user_agent=UA)
    token = identity.sign("user-9", edge.io.now // 1000 + 600, b"identity-secret")
    result = beacon(
        edge,
        {"type": "click", "decision": hero, "id": "k1"},
        {"type": "conversion", "decision": hero, "value": 40, "id": "p1"},
        {"type": "identify", "token": token},
    )
    assert result["accepted"] == 3, result
    sent = shipped(edge)
    path = tmp_path / "events.db"
    store = SqliteStore(path)
    store.append(sent)
    store.close()
    visitor = next(e["visitor"] for e in sent if e["type"] == "exposure")
    return {"store": path, "hero": hero, "visitor": visitor, "sent": sent}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main(["inspect", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_inspect_decision(recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    store = str(recorded["store"])
    found = run_json(capsys, "decision", recorded["hero"], "--store", store)
    exposure = next(e for e in recorded["sent"] if e.get("id") == recorded["hero"])
    assert found["decision_id"] == recorded["hero"] and found["visitor"] == recorded["visitor"]
    assert found["slot"] == "hero" and found["variant"] == exposure["variant"]
    assert found["propensity"] == exposure["propensity"]
    assert found["path"] == exposure.get("path", "")
    assert found["user"] == "user-9"  # linked by the identify, retroactively
    assert ("probs" in found) == ("probs" in exposure)  # a policy draw's logged distribution
    if "probs" in exposure:
        assert (found["eligible"], found["probs"]) == (exposure["eligible"], exposure["probs"])
    assert found["outcomes"] == [
        {"kind": "click", "value": 0.0},
        {"kind": "conversion", "value": 40.0},
    ]
    # stable JSON: the same bytes twice, keys sorted
    assert main(["inspect", "decision", recorded["hero"], "--store", store, "--json"]) == 0
    again = capsys.readouterr().out
    assert json.loads(again) == found and list(json.loads(again)) == sorted(found)
    assert main(["inspect", "decision", recorded["hero"], "--store", store]) == 0
    text = capsys.readouterr().out
    assert f"decision {recorded['hero']}" in text and f"hero -> {found['variant']}" in text
    assert "conversion  40" in text


def test_inspect_visitor(recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    found = run_json(capsys, "visitor", recorded["visitor"], "--store", str(recorded["store"]))
    mine = [e for e in recorded["sent"] if e["type"] == "exposure"]
    assert found["visitor"] == recorded["visitor"] and found["user"] == "user-9"
    assert sorted(e["decision_id"] for e in found["exposures"]) == sorted(e["id"] for e in mine)
    assert {e["slot"] for e in found["exposures"]} >= {"hero", "headline", "cta"}
    assert [(o["decision_id"], o["kind"], o["value"]) for o in found["outcomes"]] == [
        (recorded["hero"], "click", 0.0),
        (recorded["hero"], "conversion", 40.0),
    ]
    views = [e for e in recorded["sent"] if e["type"] == "page_view"]
    assert [(p["ts"], p["path"], p["category"]) for p in found["page_views"]] == [
        (e["ts"], e["path"], e["category"]) for e in views
    ]
    assert main(["inspect", "visitor", recorded["visitor"], "--store", str(recorded["store"])]) == 0
    text = capsys.readouterr().out
    assert "(user user-9)" in text and f"exposures   {len(mine)}" in text


def test_inspect_user_is_the_stitched_profile(
    recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--store", str(recorded["store"]), "--config", str(FIXTURES / "site.toml")]
    found = run_json(capsys, "user", "user-9", *args)
    store = SqliteStore(recorded["store"])
    state = profile_for(store, SIGNALS, "user-9")
    assert state is not None
    assert found == inspect.user(store, SIGNALS, "user-9")
    assert found["user"] == "user-9" and found["visitors"] == [recorded["visitor"]]
    assert (found["visits"], found["page_views"], found["stage"]) == (
        state.visits,
        state.page_views,
        state.stage,
    )
    assert found["affinity"] == {c: round(s, 6) for c, s in state.affinity}
    assert main(["inspect", "user", "user-9", *args]) == 0
    assert "user user-9" in capsys.readouterr().out


def test_inspect_user_reads_signals_from_the_registry(
    recorded: dict[str, Any],
    fixture_blob: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = ["--store", str(recorded["store"])]
    empty = tmp_path / "empty-registry"
    assert main(["inspect", "user", "user-9", *store, "--registry", str(empty)]) == 1
    assert "no current snapshot" in capsys.readouterr().err
    snap = tmp_path / "site.snap"
    snap.write_bytes(fixture_blob)
    registry = str(tmp_path / "registry")
    assert main(["publish", str(snap), "--registry", registry]) == 0
    capsys.readouterr()
    by_registry = run_json(capsys, "user", "user-9", *store, "--registry", registry)
    by_config = run_json(capsys, "user", "user-9", *store, "--config", str(FIXTURES / "site.toml"))
    assert by_registry == by_config


@pytest.mark.parametrize(
    "what, ident", [("decision", "nope-0"), ("visitor", "v-unknown"), ("user", "u-unknown")]
)
def test_unknown_ids_exit_1_with_a_message(
    recorded: dict[str, Any], what: str, ident: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["inspect", what, ident, "--store", str(recorded["store"])]
    if what == "user":
        args += ["--config", str(FIXTURES / "site.toml")]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"no {what} '{ident}' in {recorded['store']}" in captured.err


def test_missing_store_is_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.db"
    assert main(["inspect", "decision", "d-0", "--store", str(missing)]) == 1
    assert "no event store at" in capsys.readouterr().err and not missing.exists()
