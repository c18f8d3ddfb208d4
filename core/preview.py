"""Preview tokens: signed, expiring; they force a persona's features and/or given variants.

Token: ``<payload>.<mac>``, base64url JSON payload ``{"exp": unix seconds, "persona": {...},
"variants": {slot: variant}}`` and the first 16 bytes of HMAC-SHA256 over the payload text.
Stakeholders use them to see the site as a persona before a change goes live; the edge never
logs preview decisions as exposures and never lets a preview response be cached.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.features import RequestContext, VisitorState
from core.signing import b64decode, b64encode, tag, valid

MAX_TOKEN = 2048


@dataclass(frozen=True, slots=True)
class Preview:
    expires: int
    persona: Mapping[str, Any] = field(default_factory=dict)
    variants: Mapping[str, str] = field(default_factory=dict)


def encode(preview: Preview, key: bytes) -> str:
    body = {
        "exp": preview.expires,
        "persona": dict(preview.persona),
        "variants": dict(preview.variants),
    }
    payload = b64encode(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{tag(key, payload)}"


def decode(token: str, key: bytes, now: int) -> tuple[Preview | None, str]:
    """The preview and ``"ok"``, or ``None`` and why the token was refused (never raises)."""
    if not key:
        return None, "previews are not configured"
    if not token or len(token) > MAX_TOKEN or token.count(".") != 1 or not token.isascii():
        return None, "malformed token"
    payload, mac = token.split(".")
    try:
        if not valid(key, payload, mac):
            return None, "bad signature"
        body = json.loads(b64decode(payload))
    except (ValueError, UnicodeError, binascii.Error):
        return None, "malformed token"
    if not isinstance(body, dict):
        return None, "malformed token"
    expires, persona, variants = body.get("exp"), body.get("persona"), body.get("variants")
    if type(expires) is not int or not isinstance(persona, dict) or not isinstance(variants, dict):
        return None, "malformed token"
    if expires < now:
        return None, "expired"
    clean = {str(k): str(v) for k, v in variants.items()}
    return Preview(expires, persona, clean), "ok"


def _number(spec: Mapping[str, Any], key: str, default: float) -> float:
    value = spec.get(key, default)
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


def persona_state(
    spec: Mapping[str, Any], visitor_id: str, now: int, context: RequestContext
) -> tuple[VisitorState, RequestContext]:
    """A visitor as a preview persona describes it (lenient: unknown or bad fields are ignored).

    Keys: visits, page_views, stage, affinity {category: score}, flags [..], last_seen_hours_ago,
    and context overrides device, country, referrer, utm_source, hour.
    """
    visits = int(_number(spec, "visits", 1))
    last_seen = now - int(_number(spec, "last_seen_hours_ago", 0) * 3600)
    affinity = spec.get("affinity")
    pairs = (
        sorted(
            (
                (str(c), float(s))
                for c, s in affinity.items()
                if isinstance(s, int | float) and not isinstance(s, bool)
            ),
            key=lambda kv: -kv[1],
        )
        if isinstance(affinity, dict)
        else []
    )
    flags = spec.get("flags")
    state = VisitorState(
        visitor_id=visitor_id,
        visits=max(visits, 0),
        page_views=int(_number(spec, "page_views", max(visits, 1))),
        first_seen=last_seen,
        last_seen=last_seen,
        session_start=last_seen,
        stage=str(spec.get("stage", "")),
        affinity=tuple(pairs),
        flags=frozenset(str(f) for f in flags) if isinstance(flags, list) else frozenset(),
    )
    overrides = spec.get("context")
    if isinstance(overrides, dict):
        context = RequestContext(
            path=context.path,
            device=str(overrides.get("device", context.device)),
            country=str(overrides.get("country", context.country)),
            referrer=str(overrides.get("referrer", context.referrer)),
            utm_source=str(overrides.get("utm_source", context.utm_source)),
            utm_campaign=str(overrides.get("utm_campaign", context.utm_campaign)),
            hour=int(_number(overrides, "hour", context.hour)),
            weekday=context.weekday,
            consent=context.consent,
        )
    return state, context
