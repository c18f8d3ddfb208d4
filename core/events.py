"""Events the edge ships to the origin: exposures, outcomes, identifies; batches signed with HMAC.

An exposure is logged for every filled slot with the exact propensity and the feature vector the
policy saw, so the learner trains on exactly what the edge used. Outcomes (clicks, conversions)
carry the decision id the page got, so they join exposures exactly. Batches are JSON, signed
``hex(HMAC-SHA256(secret, body))`` in the ``x-edgepick-signature`` header.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from hashlib import sha256
from typing import Any

from core import identity
from core.decide import Decision
from core.features import RequestContext

SIGNATURE_HEADER = "x-edgepick-signature"
EXPOSURE = "exposure"
OUTCOMES = ("click", "conversion")
IDENTIFY = "identify"
EVENT_TYPES = (EXPOSURE, *OUTCOMES, IDENTIFY)
MAX_BATCH_EVENTS = 500
MAX_BATCH_BYTES = 512 * 1024
MAX_BEACON_EVENTS = 20


def exposure(
    decision: Decision,
    visitor_id: str,
    snapshot_id: str,
    ts_ms: int,
    decision_us: int,
    context: RequestContext,
    user_id: str = "",
) -> dict[str, Any]:
    """The exposure event for one filled slot (its id is the decision id)."""
    return {
        "type": EXPOSURE,
        "id": decision.decision_id,
        "ts": ts_ms,
        "visitor": visitor_id,
        "user": user_id,
        "slot": decision.slot,
        "variant": decision.variant,
        "propensity": decision.propensity,
        "policy": decision.policy,
        "reason": decision.reason.value,
        "segment": decision.segment,
        "snapshot": snapshot_id,
        "features": list(decision.features),
        "decision_us": decision_us,
        "device": context.device,
        "country": context.country,
    }


MAX_JSON_DEPTH = 8


def shallow(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON body nests at most ``limit`` arrays/objects deep (brackets inside strings
    count too, which only errs on the safe side). Checked before ``json.loads``: deep nesting
    exhausts the parser's recursion, and under Pyodide the JavaScript stack, killing the isolate.
    """
    depth = 0
    for byte in body:
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return False
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return True


def loads(body: bytes) -> Any:
    """``json.loads`` for bodies from outside: refuses deep nesting; raises ``ValueError``."""
    if not shallow(body):
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def sign(body: bytes, secret: bytes) -> str:
    return hmac.new(secret, body, sha256).hexdigest()


def verify(body: bytes, signature: str, secret: bytes) -> bool:
    given = (signature or "").encode("utf-8", "replace")  # bytes: any header value is safe
    return hmac.compare_digest(sign(body, secret).encode(), given)


def encode_batch(events: Sequence[Mapping[str, Any]]) -> bytes:
    return json.dumps({"events": list(events)}, separators=(",", ":")).encode()


_REQUIRED: dict[str, tuple[tuple[str, type | tuple[type, ...]], ...]] = {
    EXPOSURE: (
        ("slot", str),
        ("variant", str),
        ("propensity", (int, float)),
        ("snapshot", str),
        ("policy", str),
        ("features", list),
        ("decision_us", int),
    ),
    "click": (("decision", str),),
    "conversion": (("decision", str), ("value", (int, float))),
    IDENTIFY: (("user", str),),
}


def problem(event: Any) -> str | None:
    """Why an event is invalid (naming the field), or ``None`` when it is well formed."""
    if not isinstance(event, dict):
        return "an event must be an object"
    kind = event.get("type")
    if kind not in _REQUIRED:
        return f"type: must be one of {', '.join(EVENT_TYPES)}"
    for key, wanted in (("id", str), ("visitor", str), ("ts", int)):
        value = event.get(key)
        if not isinstance(value, wanted) or isinstance(value, bool) or value in ("", None):
            return f"{key}: required, {wanted.__name__}"
    for key, expected in _REQUIRED[kind]:
        value = event.get(key)
        if not isinstance(value, expected) or isinstance(value, bool):
            return f"{key}: required for {kind}"
    if kind == EXPOSURE and not 0.0 < event["propensity"] <= 1.0:
        return "propensity: must be in (0, 1]"
    if len(event["id"]) > 64:
        return "id: at most 64 characters"
    return None


def parse_beacon(
    body: bytes,
    visitor_id: str,
    ts_ms: int,
    issued: frozenset[str],
    identity_key: bytes = b"",
) -> tuple[list[dict[str, Any]], list[str]]:
    """Outcome events from the page's beacon, leniently: keep the valid ones, say why others fail.

    Only decisions issued to this visitor (``issued``, from the visitor's cookie) are accepted,
    so a stranger cannot attribute outcomes to someone else's decisions; an identify needs a
    token the site signed (``core.identity``), so nobody can claim someone else's profile.
    Events get the visitor and the edge's clock; the page supplies type, decision, value and a
    client id.
    """
    try:
        payload = loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return [], [f"body: not JSON ({exc})" if "nested" in str(exc) else "body: not JSON"]
    items = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        return [], ["events: expected a list"]
    kept: list[dict[str, Any]] = []
    errors: list[str] = []
    for n, item in enumerate(items[:MAX_BEACON_EVENTS]):
        if not isinstance(item, dict):
            errors.append(f"events[{n}]: expected an object")
            continue
        kind, decision = item.get("type"), item.get("decision")
        if kind == IDENTIFY:
            user = identity.verify(item.get("token", ""), identity_key, ts_ms // 1000)
            if user is None:
                errors.append(f"events[{n}].token: not a valid identity token from the site")
                continue
            kept.append(
                {
                    "type": IDENTIFY,
                    "id": f"{visitor_id}:identify:{user}",
                    "ts": ts_ms,
                    "visitor": visitor_id,
                    "user": user,
                }
            )
            continue
        if kind not in OUTCOMES:
            errors.append(f"events[{n}].type: must be click, conversion or identify")
            continue
        if not isinstance(decision, str) or decision not in issued:
            errors.append(f"events[{n}].decision: not a decision shown to this visitor")
            continue
        value = item.get("value", 0)
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 1e9:
            errors.append(f"events[{n}].value: expected a number >= 0")
            continue
        client_id = item.get("id")
        suffix = client_id if isinstance(client_id, str) and 0 < len(client_id) <= 32 else str(n)
        kept.append(
            {
                "type": kind,
                "id": f"{decision}:{kind}:{suffix}",
                "ts": ts_ms,
                "visitor": visitor_id,
                "decision": decision,
                "value": float(value),
            }
        )
    if len(items) > MAX_BEACON_EVENTS:
        errors.append(f"events: only the first {MAX_BEACON_EVENTS} are kept")
    return kept, errors
