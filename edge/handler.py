"""The request logic, shared by every runtime: route, decide, fill, set the cookie, log.

Fail open: no snapshot, an exception, anything unexpected -> the origin's page exactly as the
origin sent it, and the error is counted (``/_edgepick/health`` shows it).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from core import events
from core.decide import Decision, applies, decide
from core.engine import Engine
from core.features import VisitorState
from core.model import Granularity, Placement
from core.profile import decode_profile, merge_profile, profile_key
from edge import visitor as visitors
from edge.client_js import SOURCE as CLIENT_JS
from edge.config import EdgeConfig
from edge.context import parse_cookies, request_context
from edge.io import EdgeIO, Incoming, Outgoing
from edge.snapshots import SnapshotCache

PREFIX = "/_edgepick/"
MAX_BEACON_BYTES = 16 * 1024
FORWARDED = ("accept", "accept-language", "cookie", "user-agent", "referer")


@dataclass
class Stats:
    errors: int = 0
    last_error: str = ""
    requests: int = 0


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
        if engine is None or req.method not in ("GET", "HEAD") or not is_document(req.headers):
            return await _untouched(req, io, config, engine)
        return await _page(req, io, engine, config)
    except Exception as exc:  # fail open: the visitor gets the origin's page
        stats.errors += 1
        stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
        traceback.print_exc()  # the worker's log (wrangler tail / wrangler dev's console)
        if parts.path.startswith(PREFIX):
            return _json({"error": "internal error"}, 500)
        try:
            return await _untouched(req, io, config, cache.engines.get(cache.current))
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


def _origin_url(config: EdgeConfig, engine: Engine | None, path: str, query: str) -> str:
    origin = config.origin_url or (engine.site.origin.rstrip("/") if engine else "")
    return origin + path + (f"?{query}" if query else "")


async def _untouched(
    req: Incoming, io: EdgeIO, config: EdgeConfig, engine: Engine | None
) -> Outgoing:
    parts = urlsplit(req.url)
    page = await io.forward(
        _origin_url(config, engine, parts.path, parts.query)
    )  # the visitor's request as it came: method, headers, body
    return Outgoing(page.status, page=page, untouched=True)


def _forward(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in FORWARDED if name in headers}


def _json(body: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Outgoing:
    return Outgoing(
        status,
        [("content-type", "application/json"), ("cache-control", "no-store"), *(headers or [])],
        json.dumps(body, separators=(",", ":")),
    )


def _ship(io: EdgeIO, config: EdgeConfig, batch: list[dict[str, Any]]) -> None:
    if batch and config.collector_url:
        body = events.encode_batch(batch)
        signature = events.sign(body, config.events_secret)
        io.ship(
            config.collector_url,
            body,
            {"content-type": "application/json", events.SIGNATURE_HEADER: signature},
        )


def _cookie(
    who: visitors.Visitor, state: VisitorState, engine: Engine, config: EdgeConfig
) -> list[tuple[str, str]]:
    """The Set-Cookie header for the visitor's new ``state`` (none when nothing is kept)."""
    value = visitors.set_cookie(
        visitors.Visitor(state, who.context, who.status, who.stored), engine, config
    )
    return [("set-cookie", value)] if value else []


def _exposures(
    shown: list[Decision],
    who: visitors.Visitor,
    state: VisitorState,
    engine: Engine,
    now_ms: int,
    decision_us: float,
) -> list[dict[str, Any]]:
    return [
        events.exposure(
            d,
            state.visitor_id,
            engine.snapshot_id,
            now_ms,
            round(decision_us),
            who.context,
            state.user_id,
        )
        for d in shown
    ]


def _server_timing(decision_us: float) -> tuple[str, str]:
    return ("server-timing", f'edgepick;dur={decision_us / 1000:.3f};desc="decide"')


async def _page(req: Incoming, io: EdgeIO, engine: Engine, config: EdgeConfig) -> Outgoing:
    now_ms = io.now_ms()
    now = now_ms // 1000
    parts = urlsplit(req.url)
    query = dict(parse_qsl(parts.query))
    cookies = parse_cookies(req.headers.get("cookie", ""))
    context = request_context(req.url, req.headers, cookies, req.country, now, config.consent)
    started = io.cpu_us()
    who = visitors.identify(engine, config, cookies, context, query, now, io.token())
    before = who.state
    state = visitors.after_page_view(before, engine, context, now) if who.stored else before
    if who.stored and state.user_id and state.session_start == now:  # an identified new session
        waited = io.cpu_us()
        blob = await io.kv_get(profile_key(state.user_id), True)
        started += io.cpu_us() - waited  # the decision's time, not the KV read's
        found_profile = decode_profile(blob)
        if found_profile is not None:
            state = merge_profile(state, found_profile, engine.site.signals)
    reuse = visitors.reusable(before, state, engine, who.context, now) if who.stored else {}
    overrides = dict(who.preview.variants) if who.preview else None
    wanted = [s.slot.name for s in engine.slots.values() if s.slot.placement is Placement.INLINE]
    fresh_names = [n for n in wanted if n not in reuse or (overrides and n in overrides)]
    decisions = decide(
        engine, state, who.context, now, fresh_names, nonce=io.token()[:16], overrides=overrides
    )
    cached = [
        visitors.cached_decision(engine.slots[n], *reuse[n])
        for n in wanted
        if n in reuse and n not in fresh_names and applies(engine.slots[n].slot.paths, context.path)
    ]
    every = decisions + cached
    decision_us = io.cpu_us() - started

    path = parts.path
    page_decision = next(
        (d for d in every if engine.slots[d.slot].slot.granularity is Granularity.PAGE), None
    )
    if page_decision is not None:
        variant_path = engine.slots[page_decision.slot].slot.variants[page_decision.arm].content
        path = variant_path or path
    headers = _forward(req.headers)
    for d in every:
        headers[f"x-edgepick-{d.slot}"] = d.variant
    page = await io.fetch(_origin_url(config, engine, path, parts.query), headers)
    if page_decision is not None and page.status >= 400 and path != parts.path:
        # the variant's page is missing at the origin: serve the URL's own page instead
        every = [d for d in every if d is not page_decision]
        decisions = [d for d in decisions if d is not page_decision]
        page_decision = None
        page = await io.fetch(_origin_url(config, engine, parts.path, parts.query), headers)

    found: set[str] = set()
    if page.is_html:
        fills = {}
        for d in every:
            slot = engine.slots[d.slot].slot
            if slot.granularity is not Granularity.PAGE:
                fills[slot.selector] = (slot.variants[d.arm].content, d.decision_id, d.slot)
        if fills:
            page, found = await io.rewrite(page, fills)
    if page_decision is not None:
        found.add(page_decision.slot)

    out = Outgoing(page.status, page=page)
    out.headers.append(_server_timing(decision_us))
    out.headers.append(("cache-control", "private, no-store"))
    if who.preview is None:
        # only what can be attributed is worth learning from: a visitor we keep a cookie for
        # (clicks need it), on a real page view (not HEAD, not a bot)
        loggable = who.stored and req.method == "GET" and who.context.device != "bot"
        shown = [d for d in decisions if d.slot in found] if loggable else []
        if who.stored:  # only what was shown is a decision to keep for the session
            state = visitors.remember(state, shown, engine.site.epoch)
        out.headers += _cookie(who, state, engine, config)
        _ship(io, config, _exposures(shown, who, state, engine, now_ms, decision_us))
    else:
        out.headers.append(("x-edgepick-preview", "1"))
    return out


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
        now_ms = io.now_ms()
        return _json(
            {
                "ok": engine is not None,
                "snapshot": cache.current or None,
                "age_seconds": round((now_ms - cache.loaded_at_ms) / 1000, 1) if engine else None,
                "snapshot_errors": cache.errors,
                "last_snapshot_error": cache.last_error,
                "errors": stats.errors,
                "last_error": stats.last_error,
                "requests": stats.requests,
                "config_problems": list(config.problems),
            }
        )
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
        return _decide_api(req, io, engine, config)
    if route == "events" and req.method == "POST":
        return _beacon(req, io, engine, config)
    return _json({"error": f"no such endpoint: {req.method} {PREFIX}{route}"}, 404)


def _decide_api(req: Incoming, io: EdgeIO, engine: Engine, config: EdgeConfig) -> Outgoing:
    """``GET /_edgepick/decide?slots=a,b&path=/page&search=?utm..&referrer=URL``: decisions as
    JSON (single-page apps, async slots), in the context of the page that asks (its path, its
    query string and its own referrer, which the client script passes along)."""
    now_ms = io.now_ms()
    now = now_ms // 1000
    parts = urlsplit(req.url)
    query = dict(parse_qsl(parts.query))
    names = [n for n in query.get("slots", "").split(",") if n][:20]
    path = query.get("path", "/")
    search = query.get("search", "").lstrip("?")
    page_url = f"{parts.scheme}://{parts.netloc}{path if path.startswith('/') else '/'}"
    page_url += f"?{search}" if search else ""
    page_headers = {**req.headers, "referer": query.get("referrer", "")}
    cookies = parse_cookies(req.headers.get("cookie", ""))
    context = request_context(page_url, page_headers, cookies, req.country, now, config.consent)
    started = io.cpu_us()
    who = visitors.identify(engine, config, cookies, context, query, now, io.token())
    overrides = dict(who.preview.variants) if who.preview else None
    decisions = decide(
        engine, who.state, who.context, now, names, nonce=io.token()[:16], overrides=overrides
    )
    decision_us = io.cpu_us() - started
    body = {
        "snapshot": engine.snapshot_id,
        "decisions": [_public(engine, d) for d in decisions],
        "unknown": [n for n in names if n not in engine.slots],
    }
    headers = [_server_timing(decision_us)]
    if who.preview is None:
        state = who.state
        if who.stored:
            state = visitors.remember(state, decisions, engine.site.epoch)
        headers += _cookie(who, state, engine, config)
        shown = decisions if who.stored and who.context.device != "bot" else []
        _ship(io, config, _exposures(shown, who, state, engine, now_ms, decision_us))
    return _json(body, headers=headers)


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


def _beacon(req: Incoming, io: EdgeIO, engine: Engine, config: EdgeConfig) -> Outgoing:
    """``POST /_edgepick/events``: clicks, conversions and identify from the page."""
    if len(req.body) > MAX_BEACON_BYTES:
        return _json({"error": "body: over 16 KB"}, 413)
    now_ms = io.now_ms()
    cookies = parse_cookies(req.headers.get("cookie", ""))
    context = request_context(
        req.url, req.headers, cookies, req.country, now_ms // 1000, config.consent
    )
    who = visitors.identify(engine, config, cookies, context, {}, now_ms // 1000, io.token())
    if not who.stored or not visitors.is_valid_cookie(who.status):
        return _json(
            {"accepted": 0, "errors": ["no valid visitor cookie: nothing to attribute"]}, 202
        )
    issued = frozenset(d[2] for d in who.state.decisions)
    kept, errors = events.parse_beacon(
        req.body, who.state.visitor_id, now_ms, issued, config.identity_key
    )
    headers = []
    user = next((e["user"] for e in kept if e["type"] == events.IDENTIFY), None)
    if user and user != who.state.user_id:
        headers += _cookie(who, who.state._replace(user_id=user), engine, config)
    _ship(io, config, kept)
    return _json({"accepted": len(kept), "errors": errors}, 202, headers)
