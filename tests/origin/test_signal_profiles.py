"""Browser signals in the store become profile flags (origin.stitch.signal_flags), which the edge
merges into the cookie (core.profile.merge_profile: current flags replaced, others kept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.features import VisitorState
from core.model import Signals
from core.profile import merge_profile
from origin.stitch import build_profiles, iter_profiles, profile_for
from origin.store import SqliteStore
from tests.origin.helpers import NOW_MS, identify

N = 0


def signal(kind: str, visitor: str = "v-1", **fields: Any) -> dict[str, Any]:
    global N
    N += 1
    return {
        "type": "signal",
        "id": f"{visitor}:signal:{N}",
        "ts": NOW_MS + N,
        "visitor": visitor,
        "signal": kind,
        "path": "/",
        **fields,
    }


def test_each_signal_reaches_a_profile_flag(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "events.db")
    store.append(
        [
            identify("v-1", "u-1"),
            signal("product", name="run-trail-4", category="running", action="add"),
            signal("product", name="yoga-cork-mat", category="yoga", action="add"),
            signal("product", name="yoga-cork-mat", category="yoga", action="remove"),
            signal("product", name="hike-summit-shell", category="hiking", action="view"),
            signal("product", name="run-trail-4", category="running", action="view", rate=0.25),
            signal("search", query="trail shoes"),
            signal("scroll", depth=80),
            signal("scroll", depth=100),
            signal("form", name="newsletter", action="start"),
            signal("form", name="newsletter", action="submit"),
            signal("track", name="size-guide"),
            signal("track", name="size-guide"),
            signal("track", name="nav-yoga"),
            signal("search", visitor="v-anon", query="ignored"),  # nobody's profile
        ]
    )
    assert store.count("signal") == 14
    flags = build_profiles(store, Signals())["u-1"].flags
    assert dict(iter_profiles(store, Signals()))["u-1"].flags == flags  # streamed: the same
    assert flags == {
        "cart:running",  # the yoga mat was removed again
        "interest:running",  # one view sampled at 1/4 weighs 4
        "searcher",
        "engaged",
        "form:newsletter",
        "clicked:size-guide",
    }
    sliced = profile_for(store, Signals(), "u-1")  # the indexed slice gives the same
    assert sliced is not None and sliced.flags == flags


def test_abandoned_forms_and_shallow_reading(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "events.db")
    store.append(
        [
            identify("v-2", "u-2"),
            signal("form", "v-2", name="checkout", action="start"),
            signal("form", "v-2", name="checkout", action="abandon"),
            signal("scroll", "v-2", depth=90),
            signal("scroll", "v-2", depth=30),
        ]
    )
    assert build_profiles(store, Signals())["u-2"].flags == {"form-abandoner"}
    assert dict(iter_profiles(store, Signals()))["u-2"].flags == {"form-abandoner"}


def test_the_profile_replaces_current_flags_and_keeps_the_rest() -> None:
    cookie = VisitorState("v-1", flags=frozenset({"cart:yoga", "utm:news", "propensity:low"}))
    profile = VisitorState("v-1", user_id="u-1", flags=frozenset({"cart:running", "searcher"}))
    merged = merge_profile(cookie, profile, Signals())
    assert merged.flags == {"cart:running", "searcher", "utm:news"}
