"""Events the edge ships to the origin: exposures, page views, outcomes, identifies; batches
signed with HMAC.

An exposure is logged for every slot shown personalized, with the exact propensity, the feature
vector the policy saw and, for policy draws, the policy's whole distribution (``eligible``: the
arm indices it gave a positive probability, ``probs``: those probabilities to 6 significant
digits), so the learner trains on exactly what the edge used and off-policy evaluation replays
nothing. A page view is logged for every page a consenting, stored visitor was shown (path,
content category, time): the origin folds a user's profile from them exactly as the cookie does.
Outcomes (clicks, conversions) carry the decision id the page got, so they join exposures exactly.
Batches are JSON, signed ``hex(HMAC-SHA256(secret, body))`` in the ``x-edgepick-signature``
header. ``problem`` is the one validation: the collector refuses what it names, and the edge
drops such an event before shipping (so one bad event never costs a batch).

Async slots (filled by the page after the decide API answered) are logged only once the page
reports them rendered: the decide API hands each decision a signed **receipt** (the exposure
event, base64url JSON, with a 128-bit HMAC tag under the edge's own key), and the beacon's
``{"type": "shown", "decision": ID, "receipt": R}`` turns it into the exposure.
"""

from __future__ import annotations

import binascii
import hmac
import json
import math
import re
from collections.abc import Mapping, Sequence
from hashlib import sha256
from typing import Any

from core import identity
from core.decide import Decision
from core.features import RequestContext
from core.jsontext import compact_encoder
from core.packing import finite
from core.reason import Reason
from core.signing import b64decode, b64encode, mac, tag, valid

SIGNATURE_HEADER = "x-edgepick-signature"
EXPOSURE = "exposure"
OUTCOMES = ("click", "conversion")
IDENTIFY = "identify"
PAGE_VIEW = "page_view"
VITALS = "vitals"  # real-user page timings (the outcome and vitals block at the end)
SHOWN = "shown"  # beacon only: the page rendered an async slot (becomes its exposure)
PURCHASE, LOGIN, SUBSCRIBE, REFUND = "purchase", "login", "subscribe", "refund"
SERVER_TYPES = (PURCHASE, LOGIN, SUBSCRIBE, REFUND)  # from the site's backends (block at the end)
SIGNAL = "signal"  # browser behaviour: scroll, tracked clicks, forms, search, products (below)
EVENT_TYPES = (EXPOSURE, *OUTCOMES, IDENTIFY, PAGE_VIEW, VITALS, SIGNAL, *SERVER_TYPES)
MAX_BATCH_EVENTS = 500
MAX_BATCH_BYTES = 512 * 1024
MAX_BEACON_EVENTS = 20
MAX_ID = 64  # characters of an event id
MAX_PATH = 512  # characters of a logged page path
MAX_USER_ID = identity.MAX_USER_ID  # one limit: identity tokens, identify events, the collector
MAX_ARMS = 256  # entries of a logged distribution
MIN_TS = 1_577_836_800_000  # 2020-01-01: nothing older is an edgepick event
MAX_TS = 2**53  # exact in JSON numbers and SQLite integers
MAX_NAME = 128  # characters of visitor, user, slot, variant, decision, snapshot... fields
_NAMES = (
    "visitor",
    "user",
    "slot",
    "variant",
    "decision",
    "snapshot",
    "policy",
    "reason",
    "segment",
    "category",
    "device",
    "country",
    "channel",
)
MIN_PROPENSITY = 1e-9  # no policy serves an arm this rarely; below it an IPS weight explodes
MAX_FEATURES = 1024
MAX_FEATURE = 1e12
MAX_DECISION_US = 60_000_000
PROB_DIGITS = 6  # significant digits of the logged distribution (the propensity is exact)
_DRAWN = (Reason.POLICY, Reason.FALLBACK)


def support(decision: Decision) -> tuple[list[int], list[float]] | None:
    """The policy's distribution behind a policy draw, compactly: the arms it gave a positive
    probability and those probabilities to ``PROB_DIGITS`` significant digits. ``None`` for
    decisions no draw made (rule, holdout, preview, default, reused) or a non-finite vector."""
    if decision.reason not in _DRAWN:
        return None
    arms = [i for i, p in enumerate(decision.probabilities) if p > 0.0]
    probs = [float(f"{decision.probabilities[i]:.{PROB_DIGITS}g}") for i in arms]
    if not arms or len(arms) > MAX_ARMS or not all(math.isfinite(p) for p in probs):
        return None
    return arms, probs


def exposure(
    decision: Decision,
    visitor_id: str,
    snapshot_id: str,
    ts_ms: int,
    decision_us: int | None,
    context: RequestContext,
    user_id: str = "",
) -> dict[str, Any]:
    """The exposure event for one slot shown (its id is the decision id).

    ``decision_us`` is left out when it was not measured (``None``: workerd freezes clocks while
    the worker computes, so a figure there would be a fake 0)."""
    event: dict[str, Any] = {
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
        "device": context.device,
        "country": context.country,
        "path": context.path[:MAX_PATH],
    }
    if decision_us is not None:
        event["decision_us"] = decision_us
    found = support(decision)
    if found is not None:
        event["eligible"], event["probs"] = found
    return event


def page_view(
    view_id: str,
    visitor_id: str,
    ts_ms: int,
    path: str,
    category: str,
    user_id: str = "",
    snapshot_id: str = "",
) -> dict[str, Any]:
    """The page-view event for one page shown to a stored visitor (``category``: the content
    category the site's signals give the path, ``""`` for none)."""
    return {
        "type": PAGE_VIEW,
        "id": view_id,
        "ts": ts_ms,
        "visitor": visitor_id,
        "user": user_id,
        "path": path[:MAX_PATH],
        "category": category,
        "snapshot": snapshot_id,
    }


def identify_event(visitor_id: str, user: str, ts_ms: int) -> dict[str, Any]:
    """The identify event linking a visitor to a user: ``<visitor>:identify:<16 hex digits of
    the user's digest>:<ts>``, within ``MAX_ID`` whatever the user id's length. A resent batch
    repeats the same id (idempotent); a later login is a new event, so logging back in on a
    shared device (A, then B, then A again) makes A the device's user again."""
    digest = sha256(user.encode()).hexdigest()[:16]
    return {
        "type": IDENTIFY,
        "id": f"{visitor_id}:identify:{digest}:{ts_ms}",
        "ts": ts_ms,
        "visitor": visitor_id,
        "user": user,
    }


def receipt(event: Mapping[str, Any], key: bytes) -> str:
    """A signed receipt for an exposure the page may report shown (see the module docstring)."""
    payload = b64encode(json.dumps(event, separators=(",", ":")).encode())
    return f"{payload}.{tag(key, payload)}"


def open_receipt(text: Any, keys: Sequence[bytes]) -> dict[str, Any] | None:
    """The exposure in a receipt signed with one of ``keys``, or ``None`` (never raises)."""
    if not isinstance(text, str) or len(text) > 8192 or text.count(".") != 1 or not keys:
        return None
    payload, mac = text.split(".")
    if not any(key and valid(key, payload, mac) for key in keys):
        return None
    try:
        event = loads(b64decode(payload))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return None
    return event if isinstance(event, dict) and event.get("type") == EXPOSURE else None


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
    """HMAC-SHA256 of the batch, in hex (``core.signing.mac``: the key's hash states kept)."""
    return mac(secret, body).hex()


def verify(body: bytes, signature: str, secret: bytes) -> bool:
    given = (signature or "").encode("utf-8", "replace")  # bytes: any header value is safe
    return hmac.compare_digest(sign(body, secret).encode(), given)


def _unwritable(value: object) -> Any:
    raise TypeError(f"an event holds no {type(value).__name__}")


_ENCODE = compact_encoder(_unwritable, allow_nan=True)  # json.dumps' output, made once


def encode_batch(events: Sequence[Mapping[str, Any]]) -> bytes:
    try:
        return _ENCODE({"events": list(events)}).encode()
    except RecursionError:
        raise ValueError(
            "an event holds itself (or nests deeper than JSON can be written)"
        ) from None


_REQUIRED: dict[str, tuple[tuple[str, type | tuple[type, ...]], ...]] = {
    EXPOSURE: (
        ("slot", str),
        ("variant", str),
        ("propensity", (int, float)),
        ("snapshot", str),
        ("policy", str),
        ("features", list),
    ),
    "click": (("decision", str),),
    "conversion": (("decision", str), ("value", (int, float))),
    IDENTIFY: (("user", str),),
    PAGE_VIEW: (("path", str), ("category", str)),
    VITALS: (("path", str), ("decisions", list)),
    SIGNAL: (("signal", str), ("path", str)),
}


def _text_problem(event: Mapping[str, Any]) -> str | None:
    """A string that is not valid Unicode text (a lone surrogate from a JSON escape) cannot be
    stored; name the field."""
    for key, value in event.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str):
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return f"{key}: not valid text (a lone surrogate)"
    return None


def _exposure_problem(event: Mapping[str, Any]) -> str | None:
    if not MIN_PROPENSITY <= event["propensity"] <= 1.0:
        return f"propensity: must be in [{MIN_PROPENSITY:g}, 1]"
    features = event["features"]
    if len(features) > MAX_FEATURES:
        return f"features: at most {MAX_FEATURES}"
    if not all(finite(x) and abs(x) <= MAX_FEATURE for x in features):
        return f"features: finite numbers within +-{MAX_FEATURE:g}"
    us = event.get("decision_us")
    if us is not None and (type(us) is not int or not 0 <= us <= MAX_DECISION_US):
        return f"decision_us: an int in [0, {MAX_DECISION_US}], or absent when not measured"
    arms, probs = event.get("eligible"), event.get("probs")
    if arms is None and probs is None:
        return None
    if not isinstance(arms, list) or not isinstance(probs, list) or len(arms) != len(probs):
        return "eligible: a list as long as probs"
    if not arms or len(arms) > MAX_ARMS:
        return f"eligible: 1 to {MAX_ARMS} arms"
    if not all(type(i) is int and 0 <= i < MAX_ARMS for i in arms) or len(set(arms)) < len(arms):
        return "eligible: distinct arm indices"
    if not all(finite(p) and 0.0 <= p <= 1.0 for p in probs):
        return "probs: finite numbers in [0, 1]"
    return None


def problem(event: Any) -> str | None:
    """Why an event is invalid (naming the field), or ``None`` when it is well formed."""
    if not isinstance(event, dict):
        return "an event must be an object"
    kind = event.get("type")
    if kind not in _REQUIRED and kind not in SERVER_TYPES:
        return f"type: must be one of {', '.join(EVENT_TYPES)}"
    text = _text_problem(event)
    if text is not None:
        return text
    if kind in SERVER_TYPES:
        return server_problem(event)
    for key, wanted in (("id", str), ("visitor", str), ("ts", int)):
        value = event.get(key)
        if not isinstance(value, wanted) or isinstance(value, bool) or value in ("", None):
            return f"{key}: required, {wanted.__name__}"
    for key, expected in _REQUIRED[kind]:
        value = event.get(key)
        if not isinstance(value, expected) or isinstance(value, bool):
            return f"{key}: required for {kind}"
    if len(event["id"]) > MAX_ID:
        return f"id: at most {MAX_ID} characters"
    if not MIN_TS <= event["ts"] < MAX_TS:
        return "ts: milliseconds since 1970, from 2020 on"

    path = event.get("path")
    if path is not None and (not isinstance(path, str) or len(path) > MAX_PATH):
        return f"path: a string of at most {MAX_PATH} characters"
    if kind == IDENTIFY and not 0 < len(event["user"]) <= MAX_USER_ID:
        return f"user: 1 to {MAX_USER_ID} characters"
    for key in _NAMES:  # (an identify's user is checked above, with its own bound)
        value = event.get(key)
        if isinstance(value, str) and len(value) > MAX_NAME:
            return f"{key}: at most {MAX_NAME} characters"
    if kind == "conversion" and not finite(event["value"]):
        return "value: must be a finite number"
    if kind == EXPOSURE:
        return _exposure_problem(event)
    if kind == SIGNAL:
        return signal_problem(event)
    return _number_problem(event)


def parse_beacon(
    body: bytes,
    visitor_id: str,
    ts_ms: int,
    issued: frozenset[str],
    identity_key: bytes = b"",
    receipt_keys: Sequence[bytes] = (),
) -> tuple[list[dict[str, Any]], list[str]]:
    """Events from the page's beacon, leniently: keep the valid ones, say why others fail.

    Only decisions issued to this visitor (``issued``, from the visitor's cookie) are accepted,
    so a stranger cannot attribute outcomes to someone else's decisions; an identify needs a
    token the site signed (``core.identity``), so nobody can claim someone else's profile; a
    ``shown`` needs the receipt the decide API gave this visitor for that decision (it becomes
    the exposure, stamped with the time the page reported it). Events get the visitor and the
    edge's clock; the page supplies type, decision, value, receipt and a client id. Every event
    kept passes ``problem``.
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
        event, error = _beacon_event(n, item, visitor_id, ts_ms, issued, identity_key, receipt_keys)
        if event is not None and problem(event) is None:
            kept.append(event)
        else:
            errors.append(error or f"events[{n}]: {problem(event)}")
    if len(items) > MAX_BEACON_EVENTS:
        errors.append(f"events: only the first {MAX_BEACON_EVENTS} are kept")
    return kept, errors


def _beacon_event(
    n: int,
    item: Any,
    visitor_id: str,
    ts_ms: int,
    issued: frozenset[str],
    identity_key: bytes,
    receipt_keys: Sequence[bytes],
) -> tuple[dict[str, Any] | None, str]:
    """One beacon item as an event to ship, or ``None`` and why not."""
    if not isinstance(item, dict):
        return None, f"events[{n}]: expected an object"
    kind, decision = item.get("type"), item.get("decision")
    if kind == IDENTIFY:
        user = identity.verify(item.get("token", ""), identity_key, ts_ms // 1000)
        if user is None:
            return None, f"events[{n}].token: not a valid identity token from the site"
        return identify_event(visitor_id, user, ts_ms), ""
    if kind == VITALS:
        return beacon_vitals(item, n, visitor_id, ts_ms, issued)
    if kind in OUTCOMES:
        return beacon_outcome(item, n, visitor_id, ts_ms, issued)
    if kind == SIGNAL:
        return beacon_signal(item, n, visitor_id, ts_ms)
    if kind != SHOWN:
        return None, (
            f"events[{n}].type: must be click, conversion, shown, identify, vitals or signal"
        )
    if not isinstance(decision, str) or decision not in issued:
        return None, f"events[{n}].decision: not a decision shown to this visitor"
    event = open_receipt(item.get("receipt"), receipt_keys)
    if event is None or event.get("id") != decision or event.get("visitor") != visitor_id:
        return None, f"events[{n}].receipt: not this decision's receipt"
    return {**event, "ts": ts_ms}, ""


# ---- outcome ids, visitor-level conversions and real-user vitals (the page client's events) ----
#
# Outcome ids: the page names each outcome with a random id of its own (``id``, at most 32
# characters); the stored id is ``<decision>:<kind>:<outcome id>`` (``<visitor>:<kind>:<outcome
# id>`` for a visitor-level conversion), so repeat outcomes (two purchases) are distinct events
# and a replayed beacon stays idempotent. The part after the first ``:`` names the outcome
# itself: the origin credits one decision at most once per outcome (``origin.store``).
#
# A conversion with no decision is **visitor-level**: the origin credits it to every decision
# this visitor was shown within the conversion window (page-level ones, earlier pages).
#
# The cookie keeps only the latest decision per slot (and drops them first when over its byte
# budget), so a decision shown on an earlier page is often no longer in it when the page's
# click, conversion or vitals arrive (the next page already replaced it). Such events are
# accepted for any id shaped like one the edge issues (``decision_shaped``): the visitor is the
# verified cookie's, and the origin credits an outcome only to that visitor's own exposures, so
# naming someone else's decision credits nothing.

MAX_OUTCOME_ID = 32
MAX_VALUE = 1e9
MAX_PAGE_DECISIONS = 20
# real-user metrics, in milliseconds except CLS (unitless), and the bound each must stay within
VITAL_METRICS: dict[str, float] = {
    "lcp": 600_000.0,  # Largest Contentful Paint
    "inp": 600_000.0,  # Interaction to Next Paint
    "cls": 100.0,  # Cumulative Layout Shift
    "ttfb": 600_000.0,  # Time To First Byte
    "fcp": 600_000.0,  # First Contentful Paint
    "dcl": 600_000.0,  # navigation timing: DOMContentLoaded event end
    "load": 600_000.0,  # navigation timing: load event end
}


def _number_problem(event: Mapping[str, Any]) -> str | None:
    """Outcome values and vitals: finite and in range (JSON parsers accept NaN and Infinity)."""
    kind = event["type"]
    value = event.get("value", 0.0)
    if kind in OUTCOMES and not (finite(value) and 0 <= value < MAX_VALUE):
        return f"value: a finite number in [0, {MAX_VALUE:g})"
    if kind == VITALS:
        ids = event["decisions"]
        if len(ids) > MAX_PAGE_DECISIONS or not all(isinstance(d, str) and d for d in ids):
            return f"decisions: at most {MAX_PAGE_DECISIONS} decision ids"
        for name, bound in VITAL_METRICS.items():
            value = event.get(name)
            if value is not None and not (finite(value) and 0 <= value <= bound):
                return f"{name}: a finite number in [0, {bound:g}], or absent"
    return None


def decision_shaped(text: Any) -> bool:
    """Whether ``text`` looks like a decision id the edge issues: ``<16 hex digits>-<slot
    position>`` (``core.decide``: the request's random id and the slot's position)."""
    if not isinstance(text, str) or len(text) > 21:
        return False
    head, sep, tail = text.rpartition("-")
    hex_digits = len(head) == 16 and all(c in "0123456789abcdef" for c in head)
    return hex_digits and bool(sep) and tail.isdigit() and tail.isascii()


def _client_id(item: Mapping[str, Any]) -> str:
    found = item.get("id")
    if not isinstance(found, str) or not 0 < len(found) <= MAX_OUTCOME_ID:
        return ""
    return found if found.isprintable() and ":" not in found else ""


def beacon_outcome(
    item: Mapping[str, Any],
    n: int,
    visitor_id: str,
    ts_ms: int,
    issued: frozenset[str],
) -> tuple[dict[str, Any] | None, str]:
    """A click or conversion from the page (or why not). A click names a decision (issued to
    this visitor, or shaped like one: see above); a conversion names one or none
    (visitor-level). Without a client id the outcome is named by the edge's clock and its
    position (distinct, but not replay-safe)."""
    kind, decision = item.get("type"), item.get("decision")
    visitor_level = kind == "conversion" and decision in (None, "")
    known = isinstance(decision, str) and (decision in issued or decision_shaped(decision))
    if not visitor_level and not known:
        return None, f"events[{n}].decision: not a decision shown to this visitor"
    value = item.get("value", 0)
    if not finite(value) or not 0 <= value < MAX_VALUE:
        return None, f"events[{n}].value: expected a finite number >= 0"
    outcome = _client_id(item) or f"t{ts_ms}.{n}"
    owner = visitor_id if visitor_level else decision
    event = {
        "type": kind,
        "id": f"{owner}:{kind}:{outcome}",
        "ts": ts_ms,
        "visitor": visitor_id,
        "decision": "" if visitor_level else decision,
        "value": float(value),
    }
    return event, ""


def beacon_vitals(
    item: Mapping[str, Any], n: int, visitor_id: str, ts_ms: int, issued: frozenset[str]
) -> tuple[dict[str, Any] | None, str]:
    """One page's real-user timings (``VITAL_METRICS``) with the decisions the page showed.

    Decisions neither issued to this visitor nor shaped like an edge decision id are left out
    (the origin joins the rest to this visitor's own exposures); a metric that is not a finite
    number in range is left out (the event is kept); the page names itself with a client id.
    """
    page = _client_id(item)
    if not page:
        return None, f"events[{n}].id: required, 1 to {MAX_OUTCOME_ID} characters, no ':'"
    path, given = item.get("path"), item.get("decisions")
    ids = [d for d in (given if isinstance(given, list) else []) if isinstance(d, str)]
    event: dict[str, Any] = {
        "type": VITALS,
        "id": f"{visitor_id}:vitals:{page}",
        "ts": ts_ms,
        "visitor": visitor_id,
        "path": path[:MAX_PATH] if isinstance(path, str) else "",
        "decisions": [d for d in dict.fromkeys(ids) if d in issued or decision_shaped(d)][
            :MAX_PAGE_DECISIONS
        ],
    }
    for name, bound in VITAL_METRICS.items():
        value: Any = item.get(name)
        if finite(value) and 0 <= value <= bound:
            event[name] = float(value)
    return event, ""


# ---- end of the outcome and vitals block ----


# ---- server-side events: what the site's backends report (order system, login, billing) ----
#
# ``POST /v1/events`` takes them in the same signed batches as the edge's events. Each names its
# subject by ``user`` (the site's user id), ``visitor`` (the edge's visitor id, e.g. read from
# the ``ep`` cookie's owner by the site) or both, and carries no decision id: the origin credits
# a purchase or subscription to every decision that visitor or user was shown within the
# attribution window, each decision once per event (``origin.store``). ``id`` is the backend's
# own id (an order number): a resent event is a duplicate, never a second purchase. A refund
# names the purchase it refunds (``order``) and lowers what that purchase credits; a purchase
# refunded in full credits nothing. A login naming both a visitor and a user links them like an
# identify. ``currency`` is the ISO 4217 code the value is in (the learner's value reward sums
# values as sent: send one currency per site).

MAX_CURRENCY = 3


def _money_problem(event: Mapping[str, Any], required: bool) -> str | None:
    value: Any = event.get("value")
    currency = event.get("currency")
    if value is None and not required:
        return None
    if not finite(value) or not 0 <= value < MAX_VALUE:
        return f"value: a finite number in [0, {MAX_VALUE:g})"
    if not (isinstance(currency, str) and len(currency) == MAX_CURRENCY and currency.isupper()):
        return "currency: an ISO 4217 code (three capital letters)"
    if not currency.isascii() or not currency.isalpha():
        return "currency: an ISO 4217 code (three capital letters)"
    return None


def server_problem(event: Mapping[str, Any]) -> str | None:
    """Why a server-side event (``SERVER_TYPES``) is invalid, naming the field, or ``None``."""
    kind = event["type"]
    for key, wanted in (("id", str), ("ts", int)):
        value = event.get(key)
        if not isinstance(value, wanted) or isinstance(value, bool) or value == "":
            return f"{key}: required, {wanted.__name__}"
    if len(event["id"]) > MAX_ID:
        return f"id: at most {MAX_ID} characters"
    if not MIN_TS <= event["ts"] < MAX_TS:
        return "ts: milliseconds since 1970, from 2020 on"
    visitor, user = event.get("visitor", ""), event.get("user", "")
    if not isinstance(visitor, str) or not isinstance(user, str):
        return "visitor: a string (and user a string), when given"
    if not visitor and not user:
        return "user: a user id or a visitor id (or both) is required"
    if len(visitor) > MAX_NAME:
        return f"visitor: at most {MAX_NAME} characters"
    if len(user) > MAX_USER_ID:
        return f"user: at most {MAX_USER_ID} characters"
    if kind == REFUND:
        order = event.get("order")
        if not isinstance(order, str) or not 0 < len(order) <= MAX_ID:
            return f"order: the refunded purchase's id, 1 to {MAX_ID} characters"
    plan = event.get("plan", "")
    if not isinstance(plan, str) or len(plan) > MAX_NAME:
        return f"plan: a string of at most {MAX_NAME} characters"
    return _money_problem(event, required=kind in (PURCHASE, REFUND))


def login_identify(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The identify a server-side login implies (it names both a visitor and a user), or
    ``None``: the backend vouches for the link as an identity token would."""
    visitor, user = event.get("visitor", ""), event.get("user", "")
    if event.get("type") != LOGIN or not visitor or not user:
        return None
    found = identify_event(visitor, user, event["ts"])
    return found if problem(found) is None else None


# ---- end of the server-side events ----


# ---- browser signals: what the page client observes (consent-aware: stored visitors only) ----
#
# One ``signal`` event per observation, from the beacon: ``signal`` names its kind, ``path`` the
# page. ``scroll``: ``depth``, the deepest share of the page seen, in percent (0-100, one event
# per page); ``track``: a click on an element marked ``data-edgepick-track="NAME"`` (``name``);
# ``form``: ``name`` (the form's ``data-edgepick-form``, id or name) and ``action`` start,
# abandon or submit, never a field's value; ``search``: ``query``, normalized
# (``normalize_query``); ``product``: ``name`` (the product id), ``category`` and ``action``
# view, add or remove, from the markup's ``data-edgepick-product`` / ``-category``. ``rate`` is
# the sampling rate the page applied (weight 1/rate at the origin). The beacon only takes them
# from a visitor with a valid cookie, which only a consenting visitor has.

SIGNAL_ACTIONS: dict[str, tuple[str, ...]] = {
    "scroll": ("",),
    "track": ("",),
    "form": ("start", "abandon", "submit"),
    "search": ("",),
    "product": ("view", "add", "remove"),
}
MAX_QUERY = 64  # characters of a normalized search query
_EMAIL = re.compile(r"\S+@\S+")
_DIGITS = re.compile(r"\d{5,}")  # card, phone and order numbers: never kept
_NOT_WORD = re.compile(r"[^\w\s'-]+")
_SPACES = re.compile(r"\s+")


def normalize_query(text: str) -> str:
    """A site-search query as stored: case-folded (``str.casefold``), e-mail addresses and runs
    of 5 or more digits dropped, punctuation turned to spaces, whitespace collapsed, at most
    ``MAX_QUERY`` characters (cut at a word boundary when there is one)."""
    text = text[: 4 * MAX_QUERY].casefold()
    text = _DIGITS.sub(" ", _EMAIL.sub(" ", text))
    text = _SPACES.sub(" ", _NOT_WORD.sub(" ", text).replace("_", " ")).strip()
    if len(text) > MAX_QUERY:
        cut = text[: MAX_QUERY + 1].rsplit(" ", 1)[0]
        text = cut if 0 < len(cut) <= MAX_QUERY else text[:MAX_QUERY]
    return text.strip()


def signal_problem(event: Mapping[str, Any]) -> str | None:
    """Why a ``signal`` event is invalid (after the common checks), or ``None``."""
    kind = event["signal"]
    if kind not in SIGNAL_ACTIONS:
        return f"signal: one of {', '.join(SIGNAL_ACTIONS)}"
    if event.get("action", "") not in SIGNAL_ACTIONS[kind]:
        return f"action: for {kind}, one of {', '.join(SIGNAL_ACTIONS[kind])}"
    name = event.get("name", "")
    if not isinstance(name, str) or (kind in ("track", "form", "product") and not name):
        return f"name: required for {kind}, at most {MAX_NAME} characters"
    depth = event.get("depth", 0)
    if type(depth) is not int or not 0 <= depth <= 100:
        return "depth: an int percentage in [0, 100]"
    query = event.get("query", "")
    if not isinstance(query, str) or query != normalize_query(query):
        return "query: normalized (core.events.normalize_query)"
    if kind == "search" and not query:
        return "query: required for search"
    rate = event.get("rate", 1.0)
    if not finite(rate) or not 0 < rate <= 1:
        return "rate: a sampling rate in (0, 1]"
    return None


def _short(value: Any, limit: int = MAX_NAME) -> str:
    return value[:limit] if isinstance(value, str) and value.isprintable() else ""


def beacon_signal(
    item: Mapping[str, Any], n: int, visitor_id: str, ts_ms: int
) -> tuple[dict[str, Any] | None, str]:
    """One browser signal from the page, leniently: fields out of shape are cut, emptied or
    dropped; what still fails ``signal_problem`` is refused. Needs the page's client id."""
    own = _client_id(item)
    if not own:
        return None, f"events[{n}].id: required, 1 to {MAX_OUTCOME_ID} characters, no ':'"
    depth: Any = item.get("depth", 0)
    rate: Any = item.get("rate", 1.0)
    event: dict[str, Any] = {
        "type": SIGNAL,
        "id": f"{visitor_id}:signal:{own}",
        "ts": ts_ms,
        "visitor": visitor_id,
        "signal": _short(item.get("signal")),
        "path": _short(item.get("path"), MAX_PATH),
        "action": _short(item.get("action")),
        "name": _short(item.get("name")),
        "category": _short(item.get("category")),
        "depth": max(0, min(100, round(depth))) if finite(depth) else 0,
        "query": normalize_query(item["query"]) if isinstance(item.get("query"), str) else "",
        "rate": float(rate) if finite(rate) and 0 < rate <= 1 else 1.0,
    }
    why = problem(event)
    return (event, "") if why is None else (None, f"events[{n}].{why}")


# ---- end of the browser signals ----
