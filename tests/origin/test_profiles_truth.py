"""Profiles tell the truth about people: a decide call for a user nobody has seen publishes no
profile, and logging back in on a shared device makes that user the device's user again. The
events come from the edge handler (tests/edge/local.py) and the origin's decide API."""

from __future__ import annotations

from pathlib import Path

from core.model import Signals
from origin.channels import Decider
from origin.registry import Registry
from origin.stitch import build_profiles, links
from origin.store import SqliteStore
from tests.edge import local


def test_a_shared_device_belongs_to_whoever_logged_in_last(
    tmp_path: Path, fixture_blob: bytes
) -> None:
    store = SqliteStore(tmp_path / "events.db")
    edge = local.Edge(fixture_blob)
    edge.request("/")
    for user in ("anna", "ben", "anna"):  # the same browser: Anna, then Ben, then Anna again
        edge.identify(user)
        edge.request("/c/running")
    store.append(edge.shipped())
    identifies = list(store.identifies())
    assert [e["user"] for e in identifies] == ["anna", "ben", "anna"]  # none dropped as a repeat
    (visitor,) = {e["visitor"] for e in identifies}
    assert links(store)[visitor] == "anna"


def test_a_decide_for_an_unknown_user_creates_no_profile(
    tmp_path: Path, fixture_blob: bytes
) -> None:
    store = SqliteStore(tmp_path / "events.db")
    registry = Registry(tmp_path / "reg")
    registry.set_current(registry.add(fixture_blob).id)
    decider = Decider(registry, store)
    answer = decider.decide({"user": "ghost-user", "slots": ["hero"]})
    assert answer["decisions"]  # decided, and logged as an exposure for that user
    assert any(e["user"] == "ghost-user" for e in store.exposures())
    signals = decider.engine().site.signals
    assert build_profiles(store, signals, {"ghost-user"}) == {}
    assert "ghost-user" not in build_profiles(store, signals)
    assert isinstance(signals, Signals)
