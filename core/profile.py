"""A stitched user profile as the edge reads it from KV under ``profile/<base64url(user_id)>``.

The origin folds every event of a user (and of the anonymous visitors that later identified as
that user) into one ``VisitorState`` and publishes it here; the edge decodes it when an
identified visitor arrives. Format: one msgpack array

    ["edgepick-profile", 1, user_id, visitor_id, visits, first_seen, last_seen, session_start,
     page_views, stage, [category, score, ...], [flag, ...]]

Affinities are floats as of ``last_seen`` (decayed on read, like the cookie's). Session
decisions are not part of a profile. ``decode_profile`` returns ``None`` for anything that is
not a valid profile and never raises.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from core.features import VisitorState
from core.model import Signals
from core.packing import pack, unpack

# flags that state what the origin currently knows (a bucket, the cart's categories): the
# profile's replace the cookie's on merge; all other flags accumulate
CURRENT_FLAGS = ("cart:", "interest:", "clicked:", "propensity:", "frequency:", "velocity:")
PROFILE_MAGIC = "edgepick-profile"
PROFILE_VERSION = 1
MAX_PROFILE_BYTES = 64 * 1024


def profile_key(user_id: str) -> str:
    """The KV key a user's profile is published under: ``profile/`` and the id's UTF-8 bytes in
    unpadded base64url, so any id (spaces, ``..``, ``/``, NUL, one id a prefix of another) is
    one flat, valid key made of ``[A-Za-z0-9_-]`` (the edge and the origin both use this)."""
    encoded = base64.urlsafe_b64encode(user_id.encode("utf-8", "surrogatepass")).rstrip(b"=")
    return "profile/" + encoded.decode("ascii")


def encode_profile(state: VisitorState) -> bytes:
    """The profile bytes for ``state`` (its ``user_id`` names the profile)."""
    flat: list[Any] = []
    for category, score in state.affinity:
        flat.extend((category, float(score)))
    return pack(
        [
            PROFILE_MAGIC,
            PROFILE_VERSION,
            state.user_id,
            state.visitor_id,
            state.visits,
            state.first_seen,
            state.last_seen,
            state.session_start,
            state.page_views,
            state.stage,
            flat,
            sorted(state.flags),
        ]
    )


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def decode_profile(data: Any) -> VisitorState | None:
    """The state in a profile, or ``None`` for anything else (never raises)."""
    try:
        if not isinstance(data, bytes | bytearray) or len(data) > MAX_PROFILE_BYTES:
            return None
        items = unpack(bytes(data))
        if not isinstance(items, list) or len(items) != 12:
            return None
        magic, version, user, visitor, visits, first, last, start, views, stage, flat, flags = items
        if magic != PROFILE_MAGIC or version != PROFILE_VERSION:
            return None
        if not (isinstance(user, str) and user and isinstance(visitor, str) and visitor):
            return None
        if not all(_count(n) for n in (visits, first, last, start, views)):
            return None
        if not isinstance(stage, str) or not isinstance(flat, list) or len(flat) % 2:
            return None
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            return None
        affinity: list[tuple[str, float]] = []
        for category, score in zip(flat[::2], flat[1::2], strict=True):
            if not isinstance(category, str) or type(score) not in (int, float):
                return None
            if not math.isfinite(score) or score < 0:
                return None
            affinity.append((category, float(score)))
    except Exception:  # msgpack raises many unrelated types for garbage
        return None
    return VisitorState(
        visitor_id=visitor,
        visits=visits,
        first_seen=first,
        last_seen=last,
        session_start=start,
        page_views=views,
        stage=stage,
        affinity=tuple(affinity),
        flags=frozenset(flags),
        user_id=user,
    )


def merge_profile(state: VisitorState, profile: VisitorState, signals: Signals) -> VisitorState:
    """The cookie's state enriched with the user's stitched profile (other devices, history).

    Counts take the larger side (the cookie's own views are usually in the profile already),
    affinities the larger of the two once the profile's are decayed to the cookie's time,
    the funnel stage the further one, flags the union (except ``CURRENT_FLAGS``: the profile's
    replace the cookie's, so a bucket moves); the cookie keeps its identity and session.
    """
    ahead = max(state.last_seen - profile.last_seen, 0)
    factor = 2.0 ** (-ahead / signals.half_life) if signals.half_life > 0 else 1.0
    affinity = {c: s * factor for c, s in profile.affinity}
    for category, score in state.affinity:
        affinity[category] = max(score, affinity.get(category, 0.0))
    ranked = sorted(affinity.items(), key=lambda kv: (-kv[1], kv[0]))[: signals.max_categories]
    order = {stage: i for i, stage in enumerate(signals.stages)}
    stage = max((state.stage, profile.stage), key=lambda s: order.get(s, -1))
    firsts = [t for t in (state.first_seen, profile.first_seen) if t > 0]
    return state._replace(
        visits=max(state.visits, profile.visits),
        page_views=max(state.page_views, profile.page_views),
        first_seen=min(firsts) if firsts else 0,
        stage=stage,
        affinity=tuple(ranked),
        flags=frozenset(f for f in state.flags if not f.startswith(CURRENT_FLAGS)) | profile.flags,
    )
