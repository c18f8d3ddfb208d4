from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import cookie as cookies
from core import events as schema
from core.engine import Engine
from core.features import VisitorState
from core.profile import decode_profile, encode_profile, profile_key
from origin.stitch import build_profiles, profile_for
from origin.store import SqliteStore
from tests.edge.helpers import decision_marks
from tests.edge.local import Edge
from tests.origin.helpers import NOW_MS, exposure, identify, outcome

DAY = 86_400_000


def beacon(edge: Edge, *items: dict[str, Any]) -> dict[str, Any]:
    reply = edge.request(
        "/_edgepick/events", method="POST", body=json.dumps({"events": items}).encode()
    )
    answer: dict[str, Any] = json.loads(reply.body)  # type: ignore[arg-type]
    return answer


def store_of(tmp_path: Path, *edges: Edge) -> SqliteStore:
    """A store holding every event these edges shipped (what the collector would store)."""
    store = SqliteStore(tmp_path / "e.db")
    for edge in edges:
        store.append(edge.shipped())
    return store


def test_the_stitched_profile_agrees_with_the_cookie(tmp_path: Path, fixture_blob: bytes) -> None:
    """Three running pages and the cart, then identify: stage and affinity as the cookie has
    them, though the later views reused the session's decisions (no exposure of their own)."""
    edge = Edge(fixture_blob)
    for path in ("/c/running", "/c/running", "/c/running", "/cart"):
        edge.request(path)
    assert edge.identify("runner-1")["accepted"] == 1
    cookie_state = cookies.decode(edge.jar["ep"], edge.config.keyring, None).state  # type: ignore[arg-type]
    store = store_of(tmp_path, edge)
    signals = Engine.from_bytes(fixture_blob).site.signals
    profile = profile_for(store, signals, "runner-1")
    assert profile is not None and profile == build_profiles(store, signals)["runner-1"]
    assert profile.stage == cookie_state.stage == "cart"
    assert profile.page_views == cookie_state.page_views == 4
    assert profile.visits == cookie_state.visits == 1
    running = dict(profile.affinity)["running"]
    assert running == pytest.approx(dict(cookie_state.affinity)["running"], rel=1e-3)
    assert 2.9 < running < 3.0  # three views, decayed over the minutes between them
    assert profile.last_seen == cookie_state.last_seen


def test_anonymous_history_joins_the_profile_retroactively(
    tmp_path: Path, fixture_blob: bytes
) -> None:
    signals = Engine.from_bytes(fixture_blob).site.signals
    laptop, phone, stranger = Edge(fixture_blob), Edge(fixture_blob), Edge(fixture_blob)
    laptop.io.now = NOW_MS - 3 * DAY  # two anonymous visits on the laptop
    laptop.request("/c/running")
    laptop.io.now = NOW_MS - 2 * DAY
    laptop.request("/c/running")
    phone.io.now = NOW_MS - DAY  # a phone session, anonymous, that buys something
    phone.request("/c/hiking")
    decision = sorted(decision_marks(phone.request("/").page.handle))[0]  # type: ignore[union-attr]
    bought = beacon(phone, {"type": "conversion", "decision": decision, "value": 30.0})
    assert bought["accepted"] == 1
    stranger.io.now = NOW_MS
    stranger.request("/c/running")
    laptop.io.now, phone.io.now = NOW_MS, NOW_MS + 1000  # later, both identify as one user
    laptop.identify("u-1")
    phone.identify("u-1")
    store = store_of(tmp_path, laptop, phone, stranger)
    profiles = build_profiles(store, signals)
    assert set(profiles) == {"u-1"}  # the stranger never identified
    p = profiles["u-1"]
    phone_id = cookies.decode(phone.jar["ep"], phone.config.keyring, None).state.visitor_id  # type: ignore[arg-type]
    assert p.user_id == "u-1" and p.visitor_id == phone_id  # the most recent device
    assert p.page_views == 4  # 2 on the laptop, 2 on the phone
    assert p.visits == 3 and p.first_seen == (NOW_MS - 3 * DAY) // 1000
    affinity = dict(p.affinity)
    assert set(affinity) == {"running", "hiking"} and affinity["running"] > affinity["hiking"]
    # sessions of 1, 1 and 2 views within 4 weeks (origin.engagement)
    assert p.flags == frozenset({"buyer", "velocity:rising", "frequency:monthly"})
    assert profile_for(store, signals, "u-404") is None
    assert profile_for(store, signals, "u-1") == p


def test_profile_codec_round_trip_and_key() -> None:
    state = VisitorState(
        "v-9",
        visits=4,
        first_seen=10,
        last_seen=99,
        session_start=90,
        stage="cart",
        affinity=(("running", 3.5), ("yoga", 0.25)),
        flags=frozenset({"buyer"}),
        user_id="u-9",
        page_views=12,
    )
    assert decode_profile(encode_profile(state)) == state
    assert profile_key("u-9") == "profile/dS05"  # base64url("u-9")


names = st.text(min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(
    names,
    names,
    st.integers(0, 2**31),
    st.integers(0, 2**40),
    st.lists(st.tuples(names, st.floats(0, 1e6, allow_nan=False)), max_size=8),
    st.frozensets(names, max_size=4),
)
def test_profile_round_trip_property(
    user: str,
    visitor: str,
    visits: int,
    seen: int,
    affinity: list[tuple[str, float]],
    flags: frozenset[str],
) -> None:
    state = VisitorState(
        visitor, visits, seen, seen, seen, "", tuple(affinity), flags, user, visits
    )
    assert decode_profile(encode_profile(state)) == state


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.none(), st.integers(), st.text()))
def test_decode_profile_never_raises_on_garbage(data: object) -> None:
    assert decode_profile(data) is None or isinstance(decode_profile(data), VisitorState)


def test_decode_profile_refuses_near_misses() -> None:
    good = encode_profile(VisitorState("v", 1, user_id="u"))
    assert decode_profile(good) is not None
    assert decode_profile(good[:-1]) is None
    assert decode_profile(encode_profile(VisitorState("v", 1, user_id=""))) is None  # no user
    assert decode_profile(encode_profile(VisitorState("v", -1, user_id="u"))) is None
    assert decode_profile(b"\x00" * 70_000) is None


VISITORS = ("laptop", "phone", "tablet", "kiosk")
USERS = ("u-1", "u-2", "u-3")


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Exposures (anonymous or naming a user), identifies (relinks too), outcomes."""
    events: list[dict[str, Any]] = []
    for n in range(draw(st.integers(0, 12))):
        user = draw(st.sampled_from(("", "", *USERS)))
        visitor = draw(st.sampled_from(VISITORS))
        ts = NOW_MS + draw(st.integers(-5, 5)) * DAY
        request = draw(st.sampled_from(("r1", "r2", f"d{n}")))  # request ids may be reused
        event = exposure(n, visitor=visitor, user=user, ts=ts, request=request, position=n)
        events.append(event)
        view = schema.page_view(f"{request}-view-{n}", visitor, ts, f"/p{n % 3}/", "", user)
        events.append(view)
        if draw(st.booleans()):
            kind = draw(st.sampled_from(("click", "conversion")))
            who = draw(st.sampled_from(VISITORS))  # maybe not the exposure's visitor
            events.append(outcome(event["id"], kind, ts=ts + 1000, value=5.0, visitor=who))
    for k in range(draw(st.integers(0, 6))):
        visitor, user = draw(st.sampled_from(VISITORS)), draw(st.sampled_from(USERS))
        flags = draw(st.sampled_from(([], ["newsletter"])))
        ts = NOW_MS + draw(st.integers(-5, 5)) * DAY + k
        events.append(identify(visitor, user, ts=ts, flags=flags))
    return events


@settings(max_examples=80, deadline=None)
@given(histories())
def test_a_profile_from_the_user_slice_equals_one_from_the_whole_store(
    history: list[dict[str, Any]],
) -> None:
    """The origin's decide API folds one user from indexed queries (``user_events``): the
    profile must be the one stitching the whole store gives that user."""
    import tempfile

    from core.model import Signals
    from origin.stitch import links

    signals = Signals()
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "e.db")
        store.append(history)
        everyone = build_profiles(store, signals, USERS)
        linked = links(store)
        for user in USERS:
            whole = everyone.get(user)  # absent: nobody has seen this user (no profile)
            known = whole is not None and (whole.page_views > 0 or user in linked.values())
            assert profile_for(store, signals, user) == (whole if known else None)
        for visitor in VISITORS:
            assert store.user_of(visitor) == linked.get(visitor, "")
        store.close()


def test_a_user_with_more_visitors_than_sql_variables(tmp_path: Path) -> None:
    import sqlite3

    from core.model import Signals

    store = SqliteStore(tmp_path / "e.db")
    store._db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 20)  # a stingy SQLite build
    store.append([identify(f"v{i}", "u-1", ts=NOW_MS + i) for i in range(60)])
    store.append([schema.page_view(f"pv{i}", f"v{i}", NOW_MS + i, "/x/", "") for i in range(60)])
    profile = profile_for(store, Signals(), "u-1")
    assert profile is not None and profile.page_views == 60


@settings(max_examples=80, deadline=None)
@given(histories(), st.booleans())
def test_streamed_profiles_equal_the_in_memory_ones(
    history: list[dict[str, Any]], uncommon: bool
) -> None:
    """``iter_profiles`` (page views sorted by SQLite, one user at a time) gives exactly the
    profiles ``build_profiles`` gives, in user order: relinks, users who only identified, page
    views naming a user, conversions flagging the decision's or the visitor's user."""
    import tempfile

    from core.model import Signals
    from origin.stitch import iter_profiles

    signals = Signals()
    if uncommon:  # a user id sorting before and after the others, identified with no views
        history = [*history, identify("nobody-saw", "a-first", ts=NOW_MS)]
        history.append(identify("nobody-saw-2", "zz-last", ts=NOW_MS + 1))
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "e.db")
        store.append(history)
        streamed = list(iter_profiles(store, signals))
        assert [u for u, _ in streamed] == sorted(u for u, _ in streamed)
        assert dict(streamed) == build_profiles(store, signals)
        store.close()
