"""Cookie format versions and the byte budget: v2 (JSON payload) is written, v1 (msgpack) is
still read and re-issued as v2; the budget keeps as much as fits, found by binary search."""

from __future__ import annotations

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


def signed(version: str, payload: bytes) -> str:
    text = f"{version}.k1.{signing.b64encode(payload)}"
    return f"{text}.{signing.tag(KEYS.keys['k1'], text)}"


def v1_payload(state: VisitorState) -> bytes:
    flat = [x for c, s in state.affinity for x in (c, round(s * 16))]
    decisions = [x for d in state.decisions for x in d]
    fields = [state.visitor_id, state.visits, state.first_seen, state.last_seen]
    fields += [state.session_start, state.page_views, state.stage, flat, sorted(state.flags)]
    return pack([*fields, state.user_id, decisions, state.decisions_epoch])


def test_v2_is_written_and_v1_is_still_read() -> None:
    value = cookie.encode(STATE, KEYS)
    assert value.startswith("v2.k1.")
    assert cookie.decode(value, KEYS, FRESH) == cookie.Decoded(STATE, CookieStatus.OK)
    old = signed("v1", v1_payload(STATE))
    assert cookie.decode(old, KEYS, FRESH) == cookie.Decoded(STATE, CookieStatus.OK)
    newer = cookie.decode(signed("v3", b"[]"), KEYS, FRESH)
    assert newer.status is CookieStatus.UNSUPPORTED_VERSION


def test_non_finite_numbers_and_garbage_in_a_signed_payload_are_refused() -> None:
    document = json.loads(cookie._payload(STATE, 2, 1, 1))
    for bad in ("NaN", "Infinity", "-Infinity"):
        text = json.dumps(document).replace("0.25", bad)
        assert cookie.decode(signed("v2", text.encode()), KEYS, FRESH).status is (
            CookieStatus.BAD_PAYLOAD
        )
    for garbage in (b"", b"{", b"[1,2]", b'{"a":1}', b"\xff\xfe", b"[" * 2000):
        assert cookie.decode(signed("v2", garbage), KEYS, FRESH).status is CookieStatus.BAD_PAYLOAD


@settings(max_examples=60)
@given(
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=60),
    st.integers(min_value=320, max_value=3000),
)
def test_the_budget_keeps_the_most_that_fits(categories: int, decisions: int, budget: int) -> None:
    state = STATE._replace(
        affinity=tuple((f"category-{i}", 400.0 - i) for i in range(categories)),
        decisions=tuple((f"slot-{i}", "variant", f"id-{i}", 0.5) for i in range(decisions)),
    )
    value = cookie.encode(state, KEYS, max_bytes=budget)
    assert len(value) <= budget
    kept = cookie.decode(value, KEYS, FRESH).state
    # decisions go first, then the weakest affinities: whatever was kept is a prefix
    assert kept.decisions == state.decisions[: len(kept.decisions)]
    assert kept.affinity == state.affinity[: len(kept.affinity)]
    if len(kept.affinity) < categories:
        assert kept.decisions == ()
    # one more of what was cut would not have fitted
    if len(kept.decisions) < decisions:
        bigger = cookie._payload(state, len(kept.affinity), len(kept.decisions) + 1, 1)
        assert len(signed("v2", bigger)) > budget
    elif len(kept.affinity) < categories:
        bigger = cookie._payload(state, len(kept.affinity) + 1, 0, 1)
        assert len(signed("v2", bigger)) > budget
