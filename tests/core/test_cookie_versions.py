"""Cookie format versions and the byte budget: v3 (JSON payload, keyed BLAKE2b tag) is written,
v2 (the same payload, HMAC-SHA256) and v1 (msgpack, HMAC-SHA256) are still read and re-issued as
v3; the budget keeps as much as fits, found by binary search."""

from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from core import cookie, signing
from core.cookie import CookieStatus, Keyring
from core.features import VisitorState
from core.packing import pack

KEYS = Keyring("k1", {"k1": b"secret-0123456789"})
FRESH = VisitorState("fresh")
STATE = VisitorState(
    "3f2a9c0d11e4b7a8",
    visits=3,
    first_seen=1_790_000_000,
    last_seen=1_790_003_600,
    session_start=1_790_003_000,
    page_views=9,
    stage="cart",
    affinity=(("running", 2.5), ("hiking", 0.5)),
    flags=frozenset({"buyer"}),
    user_id="u-42",
    decisions=(("hero", "hero-running", "ab12-0", 0.25),),
    decisions_epoch=7,
)


GARBAGE = (
    b"",
    b"{",
    b"[1,2]",
    b'{"a":1}',
    b"\xff\xfe",
    b"[" * 2000,
    b'["v",1,2,3,-4,5,"s",[],[],"",[],0]',  # a negative time
    b'["v",1,2,3,4,5,"s",[],[1],"",[],0]',  # a flag that is no string
    b'["v",1,2,3,4,5,"s","ab",[],"",[],0]',  # affinities as a string
    b'["v",1,2,3,4,5,"s",{"ab":1},[],"",[],0]',  # affinities as an object
    b'["",1,2,3,4,5,"s",[],[],"",[],0]',  # no visitor id
    b'["v",1,2,3,4,5,"s","",[],"",[],0]',  # affinities an empty string (v2 took it as [])
    b'["v",1,2,3,4,5,"s",[],[],"",{},0]',  # decisions an empty object (likewise)
)
BAD_ITEMS = {  # affinities and decisions each version's way
    "v2": (
        b'["v",1,2,3,4,5,"s",["c",1,"d"],[],"",[],0]',  # an odd affinity list
        b'["v",1,2,3,4,5,"s",["c",true],[],"",[],0]',  # a boolean affinity
        b'["v",1,2,3,4,5,"s",[],[],"",["a","b","c",1.5],0]',  # a propensity over 1
        b'["v",1,2,3,4,5,"s",[],[],"",["a","b","c"],0]',  # a decision short of a field
    ),
    "v3": (
        b'["v",1,2,3,4,5,"s",[["c",1],["d"]],[],"",[],0]',  # an affinity short of its score
        b'["v",1,2,3,4,5,"s",[["c",true]],[],"",[],0]',  # a boolean affinity
        b'["v",1,2,3,4,5,"s",[["c",1,2]],[],"",[],0]',  # an affinity with more
        b'["v",1,2,3,4,5,"s",[{"a":1,"b":2}],[],"",[],0]',  # an affinity as an object
        b'["v",1,2,3,4,5,"s",[],[],"",[["a","b","c",1.5]],0]',  # a propensity over 1
        b'["v",1,2,3,4,5,"s",[],[],"",[["a","b","c",0.0]],0]',  # a propensity of 0
        b'["v",1,2,3,4,5,"s",[],[],"",[["a","b","c"]],0]',  # a decision short of a field
        b'["v",1,2,3,4,5,"s",[],[],"",["abcd"],0]',  # a decision as a string
        b'["v",1,2,3,4,5,"s",["c",1],[],"",[],0]',  # v2's flat affinities
    ),
}


def signed(version: str, payload: bytes) -> str:
    text = f"{version}.k1.{signing.b64encode(payload)}"
    if version == "v3":
        return f"{text}.{signing.keyed_tag(KEYS.keys['k1'], cookie.PURPOSE, text)}"
    return f"{text}.{signing.tag(KEYS.keys['k1'], text)}"


def flat_document(state: VisitorState) -> list[object]:
    """v1's and v2's array: affinities and decisions flattened."""
    flat = [x for c, s in state.affinity for x in (c, round(s * 16))]
    decisions = [x for d in state.decisions for x in d]
    fields = [state.visitor_id, state.visits, state.first_seen, state.last_seen]
    fields += [state.session_start, state.page_views, state.stage, flat, sorted(state.flags)]
    return [*fields, state.user_id, decisions, state.decisions_epoch]


def v1_payload(state: VisitorState) -> bytes:
    return pack(flat_document(state))


def v2_payload(state: VisitorState) -> bytes:
    return json.dumps(flat_document(state), separators=(",", ":")).encode()


def test_v3_is_written_and_v2_and_v1_are_still_read() -> None:
    value = cookie.encode(STATE, KEYS)
    assert value.startswith("v3.k1.")
    assert cookie.decode(value, KEYS, FRESH) == cookie.Decoded(STATE, CookieStatus.OK)
    assert json.loads(signing.b64decode(value.split(".")[2]))[7] == [["running", 40], ["hiking", 8]]
    v2 = signed("v2", v2_payload(STATE))
    assert cookie.decode(v2, KEYS, FRESH) == cookie.Decoded(STATE, CookieStatus.OK)
    old = signed("v1", v1_payload(STATE))
    assert cookie.decode(old, KEYS, FRESH) == cookie.Decoded(STATE, CookieStatus.OK)
    newer = cookie.decode(signed("v4", b"[]"), KEYS, FRESH)
    assert newer.status is CookieStatus.UNSUPPORTED_VERSION


def test_a_tag_of_one_version_does_not_verify_as_another() -> None:
    """v3's tag is keyed BLAKE2b under a cookie-only subkey: an HMAC tag (v2's, or a preview or
    identity token's, made with the same key) relabelled v3 is refused, and the reverse."""
    value = cookie.encode(STATE, KEYS)
    _, kid, payload, tag = value.split(".")
    hmac_tag = signing.tag(KEYS.keys["k1"], f"v3.{kid}.{payload}")
    forged = cookie.decode(f"v3.{kid}.{payload}.{hmac_tag}", KEYS, FRESH)
    assert forged.status is CookieStatus.BAD_SIGNATURE
    relabelled = cookie.decode(f"v2.{kid}.{payload}.{tag}", KEYS, FRESH)
    assert relabelled.status is CookieStatus.BAD_SIGNATURE
    other_purpose = signing.keyed_tag(KEYS.keys["k1"], b"edgepick-other", f"v3.{kid}.{payload}")
    assert other_purpose != tag


def test_json_with_whitespace_or_trailing_data_is_refused() -> None:
    text = cookie._payload(STATE, 2, 1, 1).decode()
    assert cookie.decode(signed("v3", text.encode()), KEYS, FRESH).status is CookieStatus.OK
    for bad in (" " + text, text + " ", text + "[]", text + "\n"):
        status = cookie.decode(signed("v3", bad.encode()), KEYS, FRESH).status
        assert status is CookieStatus.BAD_PAYLOAD, bad


def test_v1_lists_that_are_not_lists_are_refused() -> None:
    not_lists: tuple[object, ...] = (b"", {}, "ab")
    for bad in not_lists:
        for field in (7, 10):  # affinities, decisions
            document = flat_document(STATE)
            document[field] = bad
            decoded = cookie.decode(signed("v1", pack(document)), KEYS, FRESH)
            assert decoded.status is CookieStatus.BAD_PAYLOAD, (field, bad)


def test_key_ids_are_cookie_safe() -> None:
    for kid in ("k1", "key_2", "2026-11"):
        assert cookie.valid_key_id(kid)
        assert Keyring(kid, {kid: b"s"}).current == kid
    for kid in ("", "a.b", "é", "a b", "k;1", "k,1", "k=1"):
        assert not cookie.valid_key_id(kid)
        try:
            Keyring(kid, {kid: b"s"})
        except ValueError as error:
            assert "key id" in str(error)
        else:
            raise AssertionError(f"{kid!r} accepted")


def test_non_finite_numbers_and_garbage_in_a_signed_payload_are_refused() -> None:
    documents = {"v2": v2_payload(STATE).decode(), "v3": cookie._payload(STATE, 2, 1, 1).decode()}
    for version, bad in itertools.product(("v2", "v3"), ("NaN", "Infinity", "-Infinity")):
        text = documents[version].replace("0.25", bad)
        assert cookie.decode(signed(version, text.encode()), KEYS, FRESH).status is (
            CookieStatus.BAD_PAYLOAD
        )
    for version in ("v2", "v3"):
        for garbage in GARBAGE + BAD_ITEMS[version]:
            status = cookie.decode(signed(version, garbage), KEYS, FRESH).status
            assert status is CookieStatus.BAD_PAYLOAD, (version, garbage)
        good = b'["v",1,2,3,4,5,"s",[],[],"",[],0]'
        assert cookie.decode(signed(version, good), KEYS, FRESH).status is CookieStatus.OK


@settings(max_examples=120)
@given(
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=60),
    st.integers(min_value=0, max_value=80),
    st.integers(min_value=200, max_value=3000),
    st.text(min_size=1, max_size=6),
)
def test_the_budget_keeps_the_most_that_fits(
    categories: int, decisions: int, flags: int, budget: int, name: str
) -> None:
    """Any names (escaped and non-ASCII ones too): the kept parts are prefixes, dropped in order
    (decisions, affinities, flags), and one more of what was cut would not have fitted."""
    state = STATE._replace(
        affinity=tuple((f"{name}-{i}", 400.0 - i * 0.37) for i in range(categories)),
        decisions=tuple((f"slot-{i}", name, f"id-{i}", 1 / (i + 1)) for i in range(decisions)),
        flags=frozenset(f"{name}{i}" for i in range(flags)),
    )
    try:
        value = cookie.encode(state, KEYS, max_bytes=budget)
    except ValueError:  # the bare visitor alone is over the budget
        assert len(signed("v3", cookie._payload(state, 0, 0, 0))) > budget
        return
    assert len(value) <= budget
    kept = cookie.decode(value, KEYS, FRESH).state
    every_flag = sorted(state.flags)
    assert kept.decisions == state.decisions[: len(kept.decisions)]
    assert [c for c, _ in kept.affinity] == [c for c, _ in state.affinity[: len(kept.affinity)]]
    assert sorted(kept.flags) == every_flag[: len(kept.flags)]
    a, d, f = len(kept.affinity), len(kept.decisions), len(kept.flags)
    if a < categories:
        assert d == 0
    if f < flags:
        assert a == d == 0
    if d < decisions:
        assert len(signed("v3", cookie._payload(state, a, d + 1, f))) > budget
    elif a < categories:
        assert len(signed("v3", cookie._payload(state, a + 1, 0, f))) > budget
    elif f < flags:
        assert len(signed("v3", cookie._payload(state, 0, 0, f + 1))) > budget
