from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import cookie, signing
from core.cookie import CookieStatus, Keyring
from core.features import VisitorState

KEYS = Keyring("k2", {"k1": b"old-secret-0123456789", "k2": b"new-secret-9876543210"})
FRESH = VisitorState("fresh-visitor")

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=24)
counts = st.integers(min_value=0, max_value=2**40)
states = st.builds(
    VisitorState,
    visitor_id=names,
    visits=counts,
    first_seen=counts,
    last_seen=counts,
    session_start=counts,
    stage=st.text(max_size=12),
    affinity=st.lists(
        st.tuples(names, st.floats(min_value=0, max_value=4000, allow_nan=False)), max_size=6
    ).map(tuple),
    flags=st.frozensets(st.text(max_size=10), max_size=4),
    user_id=st.text(max_size=20),
    page_views=counts,
    decisions=st.lists(
        st.tuples(names, names, names, st.floats(min_value=1e-6, max_value=1.0)), max_size=6
    ).map(tuple),
    decisions_epoch=st.integers(min_value=0, max_value=2**31),
)


@settings(max_examples=300)
@given(states)
def test_round_trip_within_quantization(state: VisitorState) -> None:
    value = cookie.encode(state, KEYS, max_bytes=4096)
    decoded = cookie.decode(value, KEYS, FRESH)
    assert decoded.status is CookieStatus.OK
    got = decoded.state
    assert got._replace(affinity=()) == state._replace(affinity=())
    assert [c for c, _ in got.affinity] == [c for c, _ in state.affinity]
    for (_, a), (_, b) in zip(got.affinity, state.affinity, strict=True):
        assert abs(a - b) <= 1 / 32 + 1e-9


@settings(max_examples=300)
@given(states, st.data())
def test_any_tampering_is_detected(state: VisitorState, data: st.DataObject) -> None:
    value = cookie.encode(state, KEYS, max_bytes=4096)
    i = data.draw(st.integers(min_value=0, max_value=len(value) - 1))
    replacement = data.draw(st.sampled_from("AQgz-_.9x"))
    tampered = value[:i] + replacement + value[i + 1 :]
    decoded = cookie.decode(tampered, KEYS, FRESH)
    if tampered == value:
        assert decoded.status is CookieStatus.OK
    elif decoded.status.valid:
        # base64 padding bits can change without changing the bytes: the content must be identical
        assert decoded.state == cookie.decode(value, KEYS, FRESH).state
    else:
        assert decoded.state is FRESH


@given(st.text(max_size=5000))
def test_garbage_decodes_to_fresh_never_raises(text: str) -> None:
    decoded = cookie.decode(text, KEYS, FRESH)
    assert decoded.state is FRESH
    assert not decoded.status.valid


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (None, CookieStatus.MISSING),
        ("", CookieStatus.MISSING),
        ("x" * 5000, CookieStatus.TOO_LARGE),
        ("v1.k2.abc", CookieStatus.MALFORMED),
        ("v9.k2.abc.def", CookieStatus.UNSUPPORTED_VERSION),
        ("v1.nope.abc.def", CookieStatus.UNKNOWN_KEY),
        ("v1.k2.abc.def", CookieStatus.BAD_SIGNATURE),
    ],
)
def test_reasons(value: str | None, status: CookieStatus) -> None:
    assert cookie.decode(value, KEYS, FRESH).status is status


def test_rotation_accepts_previous_key_and_asks_to_resign() -> None:
    state = VisitorState("v-1", visits=3)
    old = cookie.encode(state, Keyring("k1", KEYS.keys))
    decoded = cookie.decode(old, KEYS, FRESH)
    assert decoded.status is CookieStatus.ROTATED and decoded.state == state
    resigned = cookie.encode(decoded.state, KEYS)
    assert resigned.split(".")[1] == "k2"
    assert cookie.decode(resigned, KEYS, FRESH).status is CookieStatus.OK
    retired = Keyring("k2", {"k2": KEYS.keys["k2"]})
    assert cookie.decode(old, retired, FRESH).status is CookieStatus.UNKNOWN_KEY


def test_valid_signature_over_bad_payload_is_rejected() -> None:
    signed = "v1.k2." + signing.b64encode(b"\xc1garbage")
    value = f"{signed}.{signing.tag(KEYS.keys['k2'], signed)}"
    assert cookie.decode(value, KEYS, FRESH).status is CookieStatus.BAD_PAYLOAD


def test_budget_drops_weakest_affinities_first() -> None:
    affinity = tuple((f"category-{i:02d}-" + "x" * 20, 100.0 - i) for i in range(40))
    state = VisitorState("v-1", visits=2, affinity=affinity)
    value = cookie.encode(state, KEYS, max_bytes=400)
    assert len(value) <= 400
    kept = cookie.decode(value, KEYS, FRESH).state.affinity
    assert 0 < len(kept) < 40
    assert [c for c, _ in kept] == [c for c, _ in affinity[: len(kept)]]


def test_budget_drops_cached_decisions_before_affinities() -> None:
    decisions = tuple((f"slot-{i}", "variant-" + "y" * 20, f"{i:016x}-{i}", 0.5) for i in range(12))
    state = VisitorState("v-1", affinity=(("running", 3.0),), decisions=decisions)
    value = cookie.encode(state, KEYS, max_bytes=500)
    kept = cookie.decode(value, KEYS, FRESH).state
    assert len(value) <= 500
    assert kept.affinity == (("running", 3.0),)
    assert 0 < len(kept.decisions) < 12 and kept.decisions == decisions[: len(kept.decisions)]


def test_keyring_rejects_bad_ids() -> None:
    with pytest.raises(ValueError, match="current key id"):
        Keyring("missing", {"k": b"x"})
    with pytest.raises(ValueError, match="ASCII letters, digits"):
        Keyring("a.b", {"a.b": b"x"})


def test_flags_are_dropped_before_giving_up() -> None:
    state = VisitorState("v-1", flags=frozenset(f"flag-{i:02d}-" + "z" * 30 for i in range(20)))
    value = cookie.encode(state, KEYS, max_bytes=300)
    assert len(value) <= 300
    kept = cookie.decode(value, KEYS, FRESH).state.flags
    assert 0 < len(kept) < 20
    with pytest.raises(ValueError, match="even without"):
        cookie.encode(VisitorState("v" * 400), KEYS, max_bytes=200)
