from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.features import VisitorState
from core.profile import decode_profile, encode_profile, profile_key
from origin.stitch import build_profiles, profile_for
from origin.store import SqliteStore
from tests.origin.helpers import NOW_MS, exposure, identify, outcome

DAY = 86_400_000


def test_anonymous_history_joins_the_profile_retroactively(tmp_path: Path, engine: Any) -> None:
    signals = engine.site.signals
    store = SqliteStore(tmp_path / "e.db")
    run_path = next(r.prefix for r in signals.categories if r.value == "running")
    hike_path = next(r.prefix for r in signals.categories if r.value == "hiking")
    store.append(
        [
            # two anonymous visits on the laptop, before logging in
            exposure(1, visitor="laptop", ts=NOW_MS - 3 * DAY, path=run_path, request="r1"),
            exposure(
                2, visitor="laptop", ts=NOW_MS - 3 * DAY, path=run_path, request="r1", position=1
            ),
            exposure(3, visitor="laptop", ts=NOW_MS - 2 * DAY, path=run_path, request="r2"),
            # a phone session, anonymous
            exposure(4, visitor="phone", ts=NOW_MS - DAY, path=hike_path, request="r3"),
            outcome("r3-0", "conversion", ts=NOW_MS - DAY + 1000, value=30.0, visitor="phone"),
            # later, both identify as the same user
            identify("laptop", "u-1", ts=NOW_MS, flags=["newsletter"]),
            identify("phone", "u-1", ts=NOW_MS + 1),
            exposure(5, visitor="stranger", ts=NOW_MS, path=run_path),
        ]
    )
    profiles = build_profiles(store, signals)
    assert set(profiles) == {"u-1"}  # the stranger never identified
    p = profiles["u-1"]
    assert p.user_id == "u-1" and p.visitor_id == "phone"  # the most recent device
    assert p.page_views == 3  # r1 (two slots, one page view), r2, r3
    assert p.visits == 3 and p.first_seen == (NOW_MS - 3 * DAY) // 1000
    assert p.last_seen == (NOW_MS - DAY) // 1000
    affinity = dict(p.affinity)
    assert set(affinity) == {"running", "hiking"} and affinity["running"] > affinity["hiking"] * 0.9
    assert p.flags == frozenset({"newsletter", "buyer"})
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
    assert profile_key("u-9") == "profile/u-9"


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
        event = exposure(
            n, visitor=visitor, user=user, ts=ts, path=f"/p{n % 3}/", request=request, position=n
        )
        events.append(event)
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
            whole = everyone[user]
            known = whole.page_views > 0 or user in linked.values()
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
    store.append([exposure(i, visitor=f"v{i}", ts=NOW_MS + i, path="/x/") for i in range(60)])
    profile = profile_for(store, Signals(), "u-1")
    assert profile is not None and profile.page_views == 60
