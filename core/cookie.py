"""The visitor cookie: versioned, signed, quantized, within a byte budget.

Format: ``v3.<key id>.<payload>.<tag>`` with base64url (unpadded) parts. The payload is a compact
JSON array ``[visitor_id, visits, first_seen, last_seen, session_start, page_views, stage,
[[category, q], ...], flags, user_id, [[slot, variant, decision_id, propensity], ...], epoch]``
where ``q = round(16 * affinity)`` (1/16 of a page view). The tag is keyed BLAKE2b-128 over
``"v3.<key id>.<payload>"`` under a subkey derived from the key for cookies alone
(``core.signing.keyed_tag``: one hash call, where HMAC-SHA256 takes two).

Older versions are still read and re-issued as ``v3``: ``v2`` (JSON with the affinities and
decisions flattened, ``[category, q, ...]``, tagged with the first 16 bytes of HMAC-SHA256,
RFC 2104) and ``v1`` (v2's array as msgpack, HMAC-SHA256). v3's nested lists go to and from the
state's tuples without a Python-level loop of flattening.
JSON is C-accelerated in Pyodide while msgpack runs its pure-Python fallback there
(bench/decide.py measures the round trip).

Keys rotate: the cookie names its key id; any known key verifies it, and a cookie signed with
a key other than the current one is reported as ``rotated`` so the edge re-signs it.
Anything that does not verify decodes to the fresh visitor plus a reason, never an exception.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from itertools import accumulate
from typing import Any, NamedTuple

from core.features import VisitorState
from core.jsontext import compact_encoder
from core.packing import unpack
from core.signing import TAG_BYTES, b64decode, b64encode, keyed_tag, keyed_valid, valid

VERSION = "v3"
READ = ("v1", "v2", "v3")  # versions still read (v1: the msgpack payload; v1, v2: HMAC-SHA256)
PURPOSE = b"edgepick-cookie"  # the tag's subkey is for cookies alone (core.signing.keyed_tag)
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


_KEY_ID_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def valid_key_id(kid: str) -> bool:
    """Whether ``kid`` can name a key in a cookie: one or more ASCII letters, digits, '-', '_'
    (the cookie is ASCII and its parts are separated by '.')."""
    return bool(kid) and _KEY_ID_CHARACTERS.issuperset(kid)


@dataclass(frozen=True, slots=True)
class Keyring:
    """Signing keys by id; ``current`` signs, every key verifies."""

    current: str
    keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError(f"current key id {self.current!r} is not in the keyring")
        for kid in self.keys:
            if not valid_key_id(kid):
                raise ValueError(f"key id {kid!r} must be ASCII letters, digits, '-' or '_'")


class Decoded(NamedTuple):
    state: VisitorState
    status: CookieStatus


def _quantized(affinity: tuple[tuple[str, float], ...]) -> list[tuple[str, int]]:
    return [(category, min(round(score * QUANTUM), 0xFFFF)) for category, score in affinity]


def _payload(state: VisitorState, categories: int, decisions: int, flags: int) -> bytes:
    vid, visits, first, last, start, stage, affinity, flagset, user, views, made, epoch = state
    document = [
        vid,
        visits,
        first,
        last,
        start,
        views,
        stage,
        _quantized(affinity[:categories]),
        sorted(flagset)[:flags],
        user,
        made[:decisions],
        epoch,
    ]
    return _ENCODE(document).encode()


_TAG_CHARS = (4 * TAG_BYTES + 2) // 3  # unpadded base64url of the tag


def _room(prefix: int, max_bytes: int) -> int:
    """The longest payload (bytes) whose value ``<prefix><base64url payload>.<tag>`` fits
    ``max_bytes``: unpadded base64 of ``n`` bytes is ``ceil(4n / 3)`` characters, and
    ``ceil(4n / 3) <= r`` exactly when ``n <= floor(3r / 4)``."""
    return 3 * (max_bytes - prefix - 1 - _TAG_CHARS) // 4


def _lengths(items: Iterable[Any]) -> list[int]:
    """``lengths[k]``: the characters the first ``k`` items add to their JSON list (each item's
    JSON, a comma between items)."""
    sizes = [len(_ENCODE(item)) + 1 for item in items]  # its JSON and one comma
    return [0, *(total - 1 for total in accumulate(sizes))]


def _fit(state: VisitorState, prefix: int, max_bytes: int) -> tuple[int, int, int] | None:
    """The most (categories, decisions, flags) whose value fits, dropping cached decisions first
    (they can be made again), then the weakest affinities, then flags; None if even the bare
    visitor does not fit. Linear: each item is encoded once to know its length, and the
    payload's length is the bare document's plus the kept items' (the JSON of a list is its
    items' joined by commas)."""
    room = _room(prefix, max_bytes) - len(_payload(state, 0, 0, 0))
    added = [
        _lengths(_quantized(state.affinity)),
        _lengths(state.decisions),
        _lengths(sorted(state.flags)),
    ]
    kept = [len(lengths) - 1 for lengths in added]
    for part in (1, 0, 2):  # decisions, then affinities, then flags
        kept[part] = 0
        left = room - sum(lengths[k] for lengths, k in zip(added, kept, strict=True))
        if left >= 0:
            kept[part] = bisect_right(added[part], left) - 1  # lengths grow with k
            return kept[0], kept[1], kept[2]
    return None


def encode(state: VisitorState, keyring: Keyring, max_bytes: int = 1024) -> str:
    """The signed cookie value within ``max_bytes``: everything when it fits, else the most that
    does (``_fit``; linear in the state's size). ``ValueError`` only if even the bare visitor
    does not fit."""
    kid = keyring.current
    prefix = f"{VERSION}.{kid}."
    payload = _payload(state, len(state.affinity), len(state.decisions), len(state.flags))
    if len(payload) > _room(len(prefix), max_bytes):
        kept = _fit(state, len(prefix), max_bytes)
        if kept is None:
            size = len(prefix) + len(b64encode(_payload(state, 0, 0, 0))) + 1 + _TAG_CHARS
            raise ValueError(f"cookie is {size} bytes even without affinities (budget {max_bytes})")
        payload = _payload(state, *kept)
    signed = prefix + b64encode(payload)
    return f"{signed}.{keyed_tag(keyring.keys[kid], PURPOSE, signed)}"


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
    signed = value[: -len(mac_b64) - 1]  # "<version>.<kid>.<payload>"
    if not (
        keyed_valid(key, PURPOSE, signed, mac_b64)
        if version == VERSION
        else valid(key, signed, mac_b64)
    ):
        return Decoded(fresh, CookieStatus.BAD_SIGNATURE)
    state = _state(payload_b64, version)
    if state is None:
        return Decoded(fresh, CookieStatus.BAD_PAYLOAD)
    # the named tuple without its Python-level __new__ (as _state builds the state)
    status = CookieStatus.OK if kid == keyring.current else CookieStatus.ROTATED
    return _new_state(Decoded, (state, status))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a cookie may hold")


def _refuse_type(value: object) -> Any:
    raise TypeError(f"a cookie holds no {type(value).__name__}")


def _json_decoder() -> Callable[[str], Any]:
    """One JSON value spanning the whole text; ``NaN``/``Infinity`` refused. The decoder's scanner
    is called directly (``JSONDecoder.decode`` matches whitespace around the value twice: the
    encoder above writes none, so text with any before or after the value is refused)."""
    decoder = json.JSONDecoder(parse_constant=_refuse_constant)
    scan: Callable[[str, int], tuple[Any, int]] = decoder.scan_once  # type: ignore[attr-defined]

    def whole(text: str) -> Any:
        document, end = scan(text, 0)
        if end != len(text):
            raise ValueError(f"data after the JSON value at {end}")
        return document

    return whole


_new_state = tuple.__new__
_ENCODE = compact_encoder(_refuse_type, allow_nan=False)  # non-finite numbers refused
_DECODE = _json_decoder()


def _document(payload: bytes, version: str) -> Any:
    if version == "v1":
        return unpack(payload)
    return _DECODE(payload.decode("utf-8"))


def _nested(flat: Any, width: int) -> list[tuple[Any, ...]]:
    """v1/v2's flat lists as v3's nested ones (an odd length raises)."""
    parts = iter(flat)
    return list(zip(*[parts] * width, strict=True))


def _state(payload_b64: str, version: str) -> VisitorState | None:
    """The state a verified payload holds, or None when it is not exactly the documented array
    (JSON and msgpack give exact types, so ``type(x) is T`` checks; ``True`` is not an int)."""
    try:
        items = _document(b64decode(payload_b64), version)
        vid, visits, first, last, start, views, stage, pairs, flags, user, made, epoch = items
        if version != VERSION:  # v1, v2: [category, q, ...] and [slot, variant, id, p, ...]
            if type(pairs) is not list or type(made) is not list:
                return None  # checked before they become lists
            pairs, made = _nested(pairs, 2), _nested(made, 4)
        affinity = tuple(
            [
                (category, q / QUANTUM)
                for category, q in pairs  # an item of another length raises
                if type(category) is str and type(q) is int and 0 <= q <= 0xFFFF
            ]
        )
        decisions = tuple(
            [
                (slot, variant, decision_id, p)
                for slot, variant, decision_id, p in made
                if type(slot) is str
                and type(variant) is str
                and type(decision_id) is str
                and type(p) is float
                and 0.0 < p <= 1.0
            ]
        )
    except Exception:  # json, msgpack, unpacking and zip raise many unrelated types for garbage
        return None
    if not (
        type(vid) is str
        and vid
        and type(stage) is str
        and type(user) is str
        and type(pairs) is list
        and type(flags) is list
        and type(made) is list
        and type(epoch) is int
        and len(affinity) == len(pairs)  # every item passed its checks
        and len(decisions) == len(made)
        and type(visits) is int
        and type(first) is int
        and type(last) is int
        and type(start) is int
        and type(views) is int
        and min(visits, first, last, start, views) >= 0
    ):
        return None
    for f in flags:
        if type(f) is not str:
            return None
    # every field in VisitorState's order, without the named tuple's Python-level __new__
    fields = (vid, visits, first, last, start, stage, affinity, frozenset(flags), user)
    return _new_state(VisitorState, (*fields, views, decisions, epoch))
