"""The visitor cookie: versioned, HMAC-SHA256 signed, quantized, within a byte budget.

Format: ``v2.<key id>.<payload>.<mac>`` with base64url (unpadded) parts. The payload is a compact
JSON array ``[visitor_id, visits, first_seen, last_seen, session_start, page_views, stage,
[category, q, ...], flags, user_id, [slot, variant, decision_id, propensity, ...], epoch]`` where
``q = round(16 * affinity)`` (1/16 of a page view). The tag is the first 16 bytes of
``HMAC-SHA256(key, "v2.<key id>.<payload>")`` (RFC 2104, ``core.signing``).

``v1`` cookies (the same array as msgpack) are still read and re-issued as ``v2``: JSON is
C-accelerated in Pyodide while msgpack runs its pure-Python fallback there (the whole round trip
is several times faster; bench/decide.py measures it).

Keys rotate: the cookie names its key id; any known key verifies it, and a cookie signed with
a key other than the current one is reported as ``rotated`` so the edge re-signs it.
Anything that does not verify decodes to the fresh visitor plus a reason, never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.features import VisitorState
from core.packing import unpack
from core.signing import b64decode, b64encode, tag, valid

VERSION = "v2"
READ = ("v1", "v2")  # versions still read (v1: the msgpack payload)
QUANTUM = 16.0
MAX_INPUT = 4096


class CookieStatus(StrEnum):
    OK = "ok"
    ROTATED = "rotated"  # valid, signed with an older key: re-sign
    MISSING = "missing"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    BAD_PAYLOAD = "bad_payload"

    @property
    def valid(self) -> bool:
        return self in (CookieStatus.OK, CookieStatus.ROTATED)


@dataclass(frozen=True, slots=True)
class Keyring:
    """Signing keys by id; ``current`` signs, every key verifies."""

    current: str
    keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError(f"current key id {self.current!r} is not in the keyring")
        for kid in self.keys:
            if not kid or "." in kid:
                raise ValueError(f"key id {kid!r} must be non-empty and contain no '.'")


@dataclass(frozen=True, slots=True)
class Decoded:
    state: VisitorState
    status: CookieStatus


def _payload(state: VisitorState, categories: int, decisions: int, flags: int) -> bytes:
    flat: list[Any] = []
    for category, score in state.affinity[:categories]:
        flat.extend((category, min(round(score * QUANTUM), 0xFFFF)))
    document = [
        state.visitor_id,
        state.visits,
        state.first_seen,
        state.last_seen,
        state.session_start,
        state.page_views,
        state.stage,
        flat,
        sorted(state.flags)[:flags],
        state.user_id,
        [part for decision in state.decisions[:decisions] for part in decision],
        state.decisions_epoch,
    ]
    return _ENCODE(document).encode()


def encode(state: VisitorState, keyring: Keyring, max_bytes: int = 1024) -> str:
    """The signed cookie value within ``max_bytes``.

    Over budget, cached decisions go first (they can be made again), then the weakest
    affinities, then flags: each by a binary search for the most that still fit (the value's
    size grows with what is kept), so a state of any size costs O(n log n), not O(n^2).
    ``ValueError`` only if even the bare visitor does not fit.
    """
    kid = keyring.current
    key = keyring.keys[kid]

    def value(categories: int, decisions: int, flags: int) -> str:
        signed = f"{VERSION}.{kid}.{b64encode(_payload(state, categories, decisions, flags))}"
        return f"{signed}.{tag(key, signed)}"

    kept = [len(state.affinity), len(state.decisions), len(state.flags)]
    best = value(*kept)
    if len(best) <= max_bytes:
        return best
    for part in (1, 0, 2):  # decisions, then affinities, then flags
        low, high = 0, kept[part]  # the most of this part that fits lies in [low, high]
        kept[part] = 0
        if len(value(*kept)) > max_bytes:
            continue  # even none of it does not fit: drop the next part too
        while low < high:
            middle = (low + high + 1) // 2
            kept[part] = middle
            if len(value(*kept)) <= max_bytes:
                low = middle
            else:
                high = middle - 1
        kept[part] = low
        return value(*kept)
    bare = value(0, 0, 0)
    raise ValueError(f"cookie is {len(bare)} bytes even without affinities (budget {max_bytes})")


def decode(value: str | None, keyring: Keyring, fresh: VisitorState) -> Decoded:
    """Verify and unpack a cookie; on any failure, ``fresh`` and the reason."""
    if not value:
        return Decoded(fresh, CookieStatus.MISSING)
    if len(value) > MAX_INPUT:
        return Decoded(fresh, CookieStatus.TOO_LARGE)
    parts = value.split(".")
    if len(parts) != 4:
        return Decoded(fresh, CookieStatus.MALFORMED)
    version, kid, payload_b64, mac_b64 = parts
    if version not in READ:
        return Decoded(fresh, CookieStatus.UNSUPPORTED_VERSION)
    key = keyring.keys.get(kid)
    if key is None:
        return Decoded(fresh, CookieStatus.UNKNOWN_KEY)
    if not valid(key, value[: -len(mac_b64) - 1], mac_b64):  # "<version>.<kid>.<payload>"
        return Decoded(fresh, CookieStatus.BAD_SIGNATURE)
    state = _state(payload_b64, version)
    if state is None:
        return Decoded(fresh, CookieStatus.BAD_PAYLOAD)
    return Decoded(state, CookieStatus.OK if kid == keyring.current else CookieStatus.ROTATED)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a cookie may hold")


_new_state = tuple.__new__
# made once: ``json.dumps``/``json.loads`` with options build a new encoder/decoder per call
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_DECODE = json.JSONDecoder(parse_constant=_refuse_constant).decode


def _document(payload: bytes, version: str) -> Any:
    if version == "v1":
        return unpack(payload)
    return _DECODE(payload.decode("utf-8"))


def _state(payload_b64: str, version: str) -> VisitorState | None:
    """The state a verified payload holds, or None when it is not exactly the documented array
    (JSON and msgpack give exact types, so ``type(x) is T`` checks; ``True`` is not an int)."""
    try:
        items = _document(b64decode(payload_b64), version)
        vid, visits, first, last, start, views, stage, flat, flags, user, made, epoch = items
    except Exception:  # json, msgpack and unpacking raise many unrelated types for garbage
        return None
    if not (
        type(vid) is str
        and vid
        and type(stage) is str
        and type(user) is str
        and type(flat) is list
        and type(flags) is list
        and type(made) is list
        and type(epoch) is int
        and not len(flat) % 2
        and not len(made) % 4
    ):
        return None
    for n in (visits, first, last, start, views):
        if type(n) is not int or n < 0:
            return None
    for f in flags:
        if type(f) is not str:
            return None
    affinity = []
    pairs = iter(flat)
    for category, q in zip(pairs, pairs, strict=True):
        if type(category) is not str or type(q) is not int or not 0 <= q <= 0xFFFF:
            return None
        affinity.append((category, q / QUANTUM))
    decisions = []
    parts = iter(made)
    for decision in zip(parts, parts, parts, parts, strict=True):
        slot, variant, decision_id, propensity = decision
        if not (
            type(slot) is str
            and type(variant) is str
            and type(decision_id) is str
            and type(propensity) is float
            and 0.0 < propensity <= 1.0
        ):
            return None
        decisions.append(decision)
    # every field in VisitorState's order, without the named tuple's Python-level __new__
    fields = (vid, visits, first, last, start, stage, tuple(affinity), frozenset(flags), user)
    return _new_state(VisitorState, (*fields, views, tuple(decisions), epoch))
