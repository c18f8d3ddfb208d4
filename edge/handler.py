"""The request logic, shared by every runtime: route, decide, fill, set the cookie, log.

Fail open: no snapshot, an exception, anything unexpected -> the origin's page exactly as the
origin sent it, and the error is counted (``/_edgepick/health`` shows it).
"""

from __future__ import annotations

import hmac
import json
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from core import events
from core.decide import Decision, decide
from core.engine import Engine
from core.features import VisitorState
from core.session_signals import session_flags
from edge import precomputed
from edge import visitor as visitors
from edge.client_js import SOURCE as CLIENT_JS
from edge.config import EdgeConfig
from edge.context import parse_cookies, request_context
from edge.delivery import DeliveryStats, ship
from edge.io import EdgeIO, Incoming, OriginTimeout, Outgoing
from edge.limits import Budget
from edge.page import (
    OWN_PREFIX,
    budget_new_visitor,
    cookie_header,
    origin_url,
    page,
    server_timing,
    strip_param,
)
from edge.presence import SlotPresence
from edge.snapshots import SnapshotCache

PREFIX = "/_edgepick/"
MAX_BEACON_BYTES = 16 * 1024


@dataclass
class Stats:
    errors: int = 0
    last_error: str = ""
    requests: int = 0
    delivery: DeliveryStats = field(default_factory=DeliveryStats)
    beacons: Budget = field(default_factory=Budget)
    # new cookies a client address may mint per minute (edge.page.read_request)
    new_visitors: Budget = field(default_factory=lambda: Budget(per_window=60))
    presence: SlotPresence = field(default_factory=SlotPresence)
    origin_timeouts: int = 0


async def handle(
    req: Incoming, io: EdgeIO, cache: SnapshotCache, config: EdgeConfig, stats: Stats
) -> Outgoing:
    """One request, never raising: anything that goes wrong serves the origin's page as is."""
    stats.requests += 1
    parts = urlsplit(req.url)
    try:
        engine = await cache.engine(io.kv_get, io.now_ms())
        if parts.path.startswith(PREFIX):
            return await _api(parts.path[len(PREFIX) :], req, io, engine, cache, config, stats)
        # a HEAD shows nothing: it goes to the origin as HEAD, untouched (nothing decided)
        if engine is None or req.method != "GET" or not is_document(req.headers):
            return await _untouched(req, io, config, engine)
        return await page(
            req, io, engine, config, stats.delivery, stats.new_visitors, stats.presence
        )
    except OriginTimeout:  # asking again would only make the visitor wait twice as long
        return origin_timeout(config, stats)
    except Exception as exc:  # fail open: the visitor gets the origin's page
        stats.errors += 1
        stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
        traceback.print_exc()  # the worker's log (wrangler tail / wrangler dev's console)
        if parts.path.startswith(PREFIX):
            return _json({"error": "internal error"}, 500)
        try:
            return await _untouched(req, io, config, cache.engines.get(cache.current))
        except OriginTimeout:
            return origin_timeout(config, stats)
        except Exception as again:
            stats.last_error = f"origin: {type(again).__name__}: {again}"[:300]
            return Outgoing(502, [("content-type", "text/plain")], "origin unavailable")


def is_document(headers: Mapping[str, str]) -> bool:
    """A page navigation, not an asset or an API call: only documents are personalized.

    Browsers say so in ``Sec-Fetch-Dest``; without it, an ``Accept`` naming HTML (or none at all,
    or ``*/*``: tools and crawlers) counts as a document.
    """
    dest = headers.get("sec-fetch-dest")
    if dest:
        return dest in ("document", "iframe")
    accept = headers.get("accept", "*/*")
    return "text/html" in accept or accept.strip() in ("", "*/*")


def origin_timeout(config: EdgeConfig, stats: Stats) -> Outgoing:
    """What a visitor gets when the origin sends no response headers in time (counted)."""
    stats.origin_timeouts += 1
    seconds = config.origin_timeout_ms / 1000
    text = f"The site's origin did not answer within {seconds:g} s. Please try again.\n"
    headers = [("content-type", "text/plain; charset=utf-8"), ("retry-after", "5")]
    return Outgoing(504, [*headers, ("cache-control", "no-store")], text)


async def _untouched(
    req: Incoming, io: EdgeIO, config: EdgeConfig, engine: Engine | None
) -> Outgoing:
    """The visitor's request as it came (method, headers, body) to the origin, less any
    ``x-edgepick-*`` header it carried (only the edge sets those)."""
    parts = urlsplit(req.url)
    query = strip_param(parts.query, visitors.PREVIEW_PARAM)
    forged = [name for name in req.headers if name.startswith(OWN_PREFIX)]
    url = origin_url(config, engine, parts.path, query)
    page = await io.forward(url, config.origin_timeout_ms, forged)
    return Outgoing(page.status, page=page, untouched=True)


def _json(body: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Outgoing:
    return Outgoing(
        status,
        [("content-type", "application/json"), ("cache-control", "no-store"), *(headers or [])],
        json.dumps(body, separators=(",", ":")),
    )


async def _api(
    route: str,
    req: Incoming,
    io: EdgeIO,
    engine: Engine | None,
    cache: SnapshotCache,
    config: EdgeConfig,
    stats: Stats,
) -> Outgoing:
    if route == "health":
        return _health(req, io, engine, cache, config, stats)
    if route == "client.js":
        return Outgoing(
            200,
            [
                ("content-type", "application/javascript; charset=utf-8"),
                ("cache-control", "public, max-age=3600"),
            ],
            CLIENT_JS,
        )
    if engine is None:
        return _json({"error": "no snapshot loaded"}, 503)
    if route == "decide" and req.method == "GET":
        return _decide_api(req, io, engine, config, stats.new_visitors)
    if route == "events" and req.method == "POST":
        return _beacon(req, io, engine, config, stats)
    return _json({"error": f"no such endpoint: {req.method} {PREFIX}{route}"}, 404)


HEALTH_KEY_HEADER = "x-edgepick-health-key"


def _health(
    req: Incoming,
    io: EdgeIO,
    engine: Engine | None,
    cache: SnapshotCache,
    config: EdgeConfig,
    stats: Stats,
) -> Outgoing:
    """Public: ok, the snapshot and its age. With ``x-edgepick-health-key: HEALTH_KEY``: also
    errors, and what became of the events this isolate sent (``edge.delivery``); error texts
    and configuration problems are for operators, not for anyone who asks."""
    now_ms = io.now_ms()
    public = {
        "ok": engine is not None,
        "snapshot": cache.current or None,
        "age_seconds": round((now_ms - cache.loaded_at_ms) / 1000, 1) if engine else None,
    }
    status = 200 if engine is not None else 503  # a load balancer's probe reads the status
    given = req.headers.get(HEALTH_KEY_HEADER, "").encode()
    if not (config.health_key and hmac.compare_digest(given, config.health_key)):
        return _json(public, status)
    return _json(
        {
            **public,
            "snapshot_errors": cache.errors,
            "last_snapshot_error": cache.last_error,
            "errors": stats.errors,
            "last_error": stats.last_error,
            "requests": stats.requests,
            "events": stats.delivery.as_dict(),
            "beacon_limited": stats.beacons.limited,
            "new_visitors_limited": stats.new_visitors.limited,
            "config_problems": list(config.problems),
            "origin_timeouts": stats.origin_timeouts,
            "pages": stats.presence.as_dict(),
            "precomputed": {
                "hits": precomputed.TABLES.hits,
                "misses": precomputed.TABLES.misses,
                "errors": precomputed.TABLES.errors,
            },
        },
        status,
    )


def _decide_api(
    req: Incoming,
    io: EdgeIO,
    engine: Engine,
    config: EdgeConfig,
    new_visitors: Budget | None = None,
) -> Outgoing:
    """``GET /_edgepick/decide?slots=a,b&path=/page&search=?utm..&referrer=URL``: decisions as
    JSON (single-page apps, async slots), in the context of the page that asks (its path, its
    query string and its own referrer, which the client script passes along).

    Nothing is logged here: the page has not shown anything yet. Each decision for a stored
    visitor carries a ``receipt``; the page sends ``{"type": "shown", "decision", "receipt"}``
    to the beacon once it rendered the slot, and that logs the exposure. A preview token in the
    asking page's query string (``search``) or in this URL previews here too.
    """
    now_ms = io.now_ms()
    now = now_ms // 1000
    parts = urlsplit(req.url)
    query = dict(parse_qsl(parts.query))
    names = [n for n in query.get("slots", "").split(",") if n][:20]
    path = query.get("path", "/")
    search = query.get("search", "").lstrip("?")
    token = query.get(visitors.PREVIEW_PARAM) or dict(parse_qsl(search)).get(visitors.PREVIEW_PARAM)
    page_url = f"{parts.scheme}://{parts.netloc}{path if path.startswith('/') else '/'}"
    page_url += f"?{search}" if search else ""
    page_headers = {**req.headers, "referer": query.get("referrer", "")}
    cookies = parse_cookies(req.headers.get("cookie", ""))
    context = request_context(page_url, page_headers, cookies, req.country, now, config.consent)
    started = io.cpu_us()
    asked = {visitors.PREVIEW_PARAM: token} if token else {}
    fresh = io.token()  # a new visitor's id from its first half, the request's from its second
    who = visitors.identify(engine, config, cookies, context, asked, now, fresh)
    who = budget_new_visitor(who, new_visitors, req, now_ms)
    overrides = dict(who.preview.variants) if who.preview else None
    decisions = decide(
        engine, who.state, who.context, now, names, nonce=fresh[16:32], overrides=overrides
    )
    elapsed = io.cpu_us() - started
    decision_us = round(elapsed) if elapsed > 0 else None
    body: dict[str, Any] = {
        "snapshot": engine.snapshot_id,
        "decisions": [_public(engine, d) for d in decisions],
        "unknown": [n for n in names if n not in engine.slots],
    }
    headers = [server_timing(decision_us)]
    if who.previewing:
        headers.append(("x-edgepick-preview", "1" if who.preview else "invalid"))
        if who.preview_error:
            body["preview_error"] = who.preview_error
        return _json(body, headers=headers)
    state = who.state
    if who.stored:
        state = visitors.remember(state, decisions, engine.site.epoch)
        if who.context.device != "bot":
            receipts = _receipts(decisions, state, who, engine, config, now_ms, decision_us)
            for public, receipt in zip(body["decisions"], receipts, strict=True):
                public["receipt"] = receipt
    headers += cookie_header(who, state, engine, config)
    return _json(body, headers=headers)


def _receipts(
    decisions: list[Decision],
    state: VisitorState,
    who: visitors.Visitor,
    engine: Engine,
    config: EdgeConfig,
    now_ms: int,
    decision_us: int | None,
) -> list[str]:
    """Each decision's exposure, signed, for the page to return in ``shown`` once rendered."""
    key = visitors.receipt_keys(config)[0]
    sid, visitor, user = engine.snapshot_id, state.visitor_id, state.user_id
    return [
        events.receipt(
            events.exposure(d, visitor, sid, now_ms, decision_us, who.context, user), key
        )
        for d in decisions
    ]


def _public(engine: Engine, d: Decision) -> dict[str, Any]:
    slot = engine.slots[d.slot].slot
    return {
        "slot": d.slot,
        "variant": d.variant,
        "content": slot.variants[d.arm].content,
        "decision": d.decision_id,
        "propensity": d.propensity,
        "reason": d.reason.value,
    }


def _beacon(
    req: Incoming, io: EdgeIO, engine: Engine, config: EdgeConfig, stats: Stats
) -> Outgoing:
    """``POST /_edgepick/events``: clicks, conversions, shown async slots and identify."""
    if len(req.body) > MAX_BEACON_BYTES:
        return _json({"error": "body: over 16 KB"}, 413)
    now_ms = io.now_ms()
    cookies = parse_cookies(req.headers.get("cookie", ""))
    context = request_context(
        req.url, req.headers, cookies, req.country, now_ms // 1000, config.consent
    )
    who = visitors.identify(
        engine, config, cookies, context, {}, now_ms // 1000, io.token(), turn_bots_away=False
    )
    if not who.stored or not visitors.is_valid_cookie(who.status):
        return _json(
            {"accepted": 0, "errors": ["no valid visitor cookie: nothing to attribute"]}, 202
        )
    issued = frozenset(d[2] for d in who.state.decisions)
    kept, errors = events.parse_beacon(
        req.body,
        who.state.visitor_id,
        now_ms,
        issued,
        config.identity_key,
        visitors.receipt_keys(config),
    )
    granted = stats.beacons.take(who.state.visitor_id, len(kept), now_ms)
    if granted < len(kept):
        errors.append(f"rate limit: {len(kept) - granted} event(s) over this visitor's budget")
        kept = kept[:granted]
        if not kept:
            return _json({"accepted": 0, "errors": errors}, 429)
    state = who.state
    user = next((e["user"] for e in kept if e["type"] == events.IDENTIFY), None)
    if user and user != state.user_id:
        state = state._replace(user_id=user)
    signals = [e for e in kept if e["type"] == events.SIGNAL]
    if signals:  # this session's features act on them at once (core.session_signals)
        state = state._replace(flags=session_flags(state.flags, signals))
    headers = cookie_header(who, state, engine, config) if state != who.state else []
    ship(io, config, stats.delivery, kept)
    return _json({"accepted": len(kept), "errors": errors}, 202, headers)
