"""The page pipeline: one document navigation, as a sequence of small named steps.

    read_request -> merge_profile -> decide_slots -> fetch_origin -> fill_slots -> respond

Each step reads and extends one ``View``. What is logged follows what the visitor was shown:

- a page **counts** (the cookie records the view, a ``page_view`` event is logged) when a
  stored visitor's GET was answered with a 200 HTML page, not speculatively (prefetch,
  prerender) and not as a preview;
- it is **logged** (page view, and an exposure per fresh decision the page showed) when it
  counts and the visitor is a person (not a crawler or an HTTP tool);
- a preview (a valid token: every slot forced, async ones filled in place; an invalid one: the
  live site) is never logged, never sets the cookie, and says so with a banner and the header
  ``x-edgepick-preview: 1`` or ``invalid``; its token never reaches the origin.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from urllib.parse import parse_qsl, urlsplit

from core import events
from core.decide import Decision, applies
from core.engine import Engine
from core.features import VisitorState, route
from core.model import Granularity, Placement
from core.profile import decode_profile, profile_key
from core.profile import merge_profile as merge
from edge import precomputed
from edge import visitor as visitors
from edge.client_js import page_marks
from edge.config import EdgeConfig
from edge.context import is_speculative, parse_cookies, request_context
from edge.delivery import DeliveryStats, ship
from edge.io import Completion, EdgeIO, Incoming, Outgoing, Page
from edge.limits import Budget
from edge.presence import SlotPresence

# request headers that describe one hop, not the request: never forwarded to the origin
HOP_BY_HOP = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    )
)
OWN_PREFIX = "x-edgepick-"  # headers the edge sets for the origin; a visitor's are dropped
BANNER_STYLE = (
    "position:fixed;left:0;right:0;bottom:0;z-index:2147483647;padding:6px 12px;"
    "font:13px/1.4 system-ui,sans-serif;color:#fff;background:{}"
)


@dataclass
class View:
    """One page request as it moves through the pipeline."""

    req: Incoming
    path: str  # the URL's path
    query: str  # the URL's query string without the preview token (what the origin gets)
    now_ms: int
    who: visitors.Visitor
    before: VisitorState  # the cookie's state
    state: VisitorState  # after this page view (stored visitors)
    nonce: str  # this request's random id: names its decisions and its page view
    speculative: bool
    started_us: float
    decisions: list[Decision] = field(default_factory=list)  # made afresh for this request
    served: list[Decision] = field(default_factory=list)  # fresh and reused, in page order
    decision_us: int | None = None  # None: not measurable here (workerd freezes clocks)
    page_decision: Decision | None = None
    page: Page | None = None
    source: str = ""  # the origin path the page came from (a page slot's variant path, or path)
    found: set[str] = field(default_factory=set)  # slots the page really holds
    # streamed: the slots expected (edge.presence), and the end of the document, when the
    # rewriter has met every slot the page holds
    expected: frozenset[str] | None = None
    done: Completion | None = None
    filling: bool = False  # streamed with slots to fill (which it holds is known only later)

    @property
    def now(self) -> int:
        return self.now_ms // 1000

    @property
    def counted(self) -> bool:
        return (
            self.who.stored
            and not self.who.previewing
            and self.req.method == "GET"
            and not self.speculative
            and self.page is not None
            and self.page.is_html
        )

    @property
    def logged(self) -> bool:
        return self.counted and self.who.context.device != "bot"

    @property
    def personalized(self) -> bool:
        """Whether the page's content is this visitor's: a slot filled (found, or for a streamed
        view, any fill attempted: its slots are not known yet), a page-level variant, a preview."""
        return bool(self.found) or self.filling or self.page_decision is not None

    @property
    def shown(self) -> set[str]:
        """The slots the visitor is shown: those found, or, while the page streams, those
        expected (``edge.presence``)."""
        if self.done is None or self.expected is None:
            return self.found
        return set(self.expected) | page_slots(self)


def strip_param(query: str, name: str) -> str:
    """The query string without ``name`` (every other byte as it came)."""
    kept = [part for part in query.split("&") if part and part.split("=", 1)[0] != name]
    return "&".join(kept)


def origin_url(config: EdgeConfig, engine: Engine | None, path: str, query: str) -> str:
    origin = config.origin_url or (engine.site.origin.rstrip("/") if engine else "")
    return origin + path + (f"?{query}" if query else "")


async def page(
    req: Incoming,
    io: EdgeIO,
    engine: Engine,
    config: EdgeConfig,
    delivery: DeliveryStats,
    new_visitors: Budget | None = None,
    presence: SlotPresence | None = None,
) -> Outgoing:
    view = read_request(req, io, engine, config, new_visitors)
    await merge_profile(view, io, engine)
    decide_slots(view, io, engine)
    await fetch_origin(view, io, engine, config)
    await fill_slots(view, io, engine, presence)
    return respond(view, io, engine, config, delivery, presence)


def budget_new_visitor(
    who: visitors.Visitor, new_visitors: Budget | None, req: Incoming, now_ms: int
) -> visitors.Visitor:
    """A request that gets a fresh visitor (no cookie, or one that does not verify) spends one
    of its address's new-visitor budget; past it the visitor is served, not stored."""
    address = req.headers.get("cf-connecting-ip", "")
    if new_visitors is None or not address or not who.stored:
        return who
    if visitors.is_valid_cookie(who.status) or new_visitors.take(address, 1, now_ms):
        return who
    return replace(who, status="new-visitor-limit", stored=False)


def read_request(
    req: Incoming,
    io: EdgeIO,
    engine: Engine,
    config: EdgeConfig,
    new_visitors: Budget | None = None,
) -> View:
    """Who is asking, for which page: the verified visitor, the request context, the view.

    ``new_visitors``: a budget of new cookies per client address (``cf-connecting-ip``); past
    it a new visitor is served like one without consent (decided, not stored, never logged),
    so one client minting cookies cannot flood the learner with fresh visitors."""
    now_ms = io.now_ms()
    parts = urlsplit(req.url)
    params = dict(parse_qsl(parts.query))
    cookies = parse_cookies(req.headers.get("cookie", ""))
    context = request_context(
        req.url, req.headers, cookies, req.country, now_ms // 1000, config.consent
    )
    started = io.cpu_us()
    fresh = io.token()  # 128 random bits: a new visitor's id from the first half, the request's
    # id from the second (one call for both: randomness comes from JS, a crossing each time)
    who = visitors.identify(engine, config, cookies, context, params, now_ms // 1000, fresh)
    who = budget_new_visitor(who, new_visitors, req, now_ms)
    state = who.state
    if who.stored:
        state = visitors.after_page_view(state, engine, context, now_ms // 1000)
    return View(
        req=req,
        path=parts.path or "/",
        query=strip_param(parts.query, visitors.PREVIEW_PARAM),
        now_ms=now_ms,
        who=who,
        before=who.state,
        state=state,
        nonce=fresh[16:32],
        speculative=is_speculative(req.headers),
        started_us=started,
    )


async def merge_profile(view: View, io: EdgeIO, engine: Engine) -> None:
    """An identified visitor's new session starts from the user's stitched profile."""
    state = view.state
    if not (view.who.stored and state.user_id and state.session_start == view.now):
        return
    waited = io.cpu_us()
    blob = await io.kv_get(profile_key(state.user_id), True)
    view.started_us += io.cpu_us() - waited  # the decision's time, not the KV read's
    found = decode_profile(blob)
    if found is not None:
        view.state = merge(state, found, engine.site.signals)


def decide_slots(view: View, io: EdgeIO, engine: Engine) -> None:
    """Decide the page's slots: this session's decisions where they still hold, the rest afresh
    (a preview forces its variants and decides async slots too, to fill them in place)."""
    who, now = view.who, view.now
    reuse = (
        visitors.reusable(view.before, view.state, engine, who.context, now) if who.stored else {}
    )
    overrides = dict(who.preview.variants) if who.preview else None
    placements = (Placement.INLINE, Placement.ASYNC) if who.preview else (Placement.INLINE,)
    wanted = [n for n, s in engine.slots.items() if s.slot.placement in placements]
    fresh = [n for n in wanted if n not in reuse or (overrides and n in overrides)]
    # the pre-computed table when it serves this request (edge.precomputed), else live: the same
    view.decisions = precomputed.decide_fresh(
        engine, io, view.state, who.context, now, fresh, view.nonce, overrides, view.started_us
    )
    cached = [
        visitors.cached_decision(engine.slots[n], *reuse[n])
        for n in wanted
        if n in reuse and n not in fresh and applies(engine.slots[n].slot.paths, view.path)
    ]
    view.served = view.decisions + cached
    elapsed = io.cpu_us() - view.started_us
    view.decision_us = round(elapsed) if elapsed > 0 else None
    view.page_decision = next(
        (d for d in view.served if engine.slots[d.slot].slot.granularity is Granularity.PAGE), None
    )


async def fetch_origin(view: View, io: EdgeIO, engine: Engine, config: EdgeConfig) -> None:
    """The origin's page (a page slot's variant path instead of the URL's, if it exists), with
    every decision as an ``x-edgepick-<slot>`` request header (header mode)."""
    headers = forwarded_headers(view.req.headers)
    for d in view.served:
        headers[f"{OWN_PREFIX}{d.slot}"] = d.variant
    path = view.path
    if view.page_decision is not None:
        slot = engine.slots[view.page_decision.slot].slot
        path = slot.variants[view.page_decision.arm].content or path
    timeout = config.origin_timeout_ms
    view.page = await io.fetch(origin_url(config, engine, path, view.query), headers, timeout)
    view.source = path
    if view.page_decision is not None and view.page.status >= 400 and path != view.path:
        # the variant's page is missing at the origin: serve the URL's own page instead
        dropped = view.page_decision
        view.served = [d for d in view.served if d is not dropped]
        view.decisions = [d for d in view.decisions if d is not dropped]
        view.page_decision = None
        url = origin_url(config, engine, view.path, view.query)
        view.page = await io.fetch(url, headers, timeout)
        view.source = view.path


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The visitor's request headers for the origin: all of them (authorization, conditional
    requests, forwarding chains, cookies...) except those that describe one hop and any
    ``x-edgepick-*`` a visitor sent (the edge sets its own)."""
    return {
        name: value
        for name, value in headers.items()
        if name not in HOP_BY_HOP and not name.startswith(OWN_PREFIX)
    }


def banner(who: visitors.Visitor) -> str:
    """The preview banner (empty when no preview was asked for)."""
    if who.preview is not None:
        forced = ", ".join(f"{s}={v}" for s, v in sorted(who.preview.variants.items()))
        text, color = "edgepick preview" + (f": {forced}" if forced else ""), "#1d4ed8"
    elif who.preview_error:
        text = f"edgepick preview refused ({who.preview_error}): this is the live site"
        color = "#b91c1c"
    else:
        return ""
    style = BANNER_STYLE.format(color)
    return f'<div data-edgepick-preview-banner style="{style}">{html.escape(text)}</div>'


async def fill_slots(
    view: View, io: EdgeIO, engine: Engine, presence: SlotPresence | None = None
) -> None:
    """Fill every element slot the page holds; add a preview banner. The page streams unless
    its cookie must name slots this isolate has not yet seen on it (``edge.presence``): then it
    is buffered, and the slots it held are learnt."""
    page = view.page
    assert page is not None
    if page.is_html:
        fills = {}
        for d in view.served:
            slot = engine.slots[d.slot].slot
            if slot.granularity is not Granularity.PAGE:
                fills[slot.selector] = (slot.variants[d.arm].content, d.decision_id, d.slot)
        note = banner(view.who)
        # for the page client: page-level decisions and async slots' defaults (edge.client_js)
        marks = {} if view.who.previewing else page_marks(engine, view.page_decision, fills)
        if fills or note or marks:
            expected = presence.expected(view.source) if presence is not None else None
            stream = presence is not None and (not view.logged or expected is not None)
            done = await io.rewrite(page, fills, note, marks, stream)
            view.page, view.found = done.page, done.found
            if presence is not None and stream:
                slots = {slot for _html, _id, slot in fills.values()}
                view.expected = frozenset(slots & expected if expected is not None else slots)
                view.done = done.done
                view.filling = bool(fills)
                presence.streamed += 1
            elif presence is not None and view.logged:
                presence.buffered += 1
                presence.learn(view.source, view.found)
        if view.page_decision is not None:
            view.found.add(view.page_decision.slot)


def server_timing(decision_us: int | None) -> tuple[str, str]:
    """``Server-Timing`` for the decision; without ``dur`` when it could not be measured."""
    if decision_us is None:
        return ("server-timing", 'edgepick;desc="decide (duration not measurable here)"')
    return ("server-timing", f'edgepick;dur={decision_us / 1000:.3f};desc="decide"')


def cookie_header(
    who: visitors.Visitor, state: VisitorState, engine: Engine, config: EdgeConfig
) -> list[tuple[str, str]]:
    """The Set-Cookie header for the visitor's new ``state`` (none when nothing is kept)."""
    value = visitors.set_cookie(
        visitors.Visitor(state, who.context, who.status, who.stored), engine, config
    )
    return [("set-cookie", value)] if value else []


def respond(
    view: View,
    io: EdgeIO,
    engine: Engine,
    config: EdgeConfig,
    delivery: DeliveryStats,
    presence: SlotPresence | None = None,
) -> Outgoing:
    """The reply's headers and cookie, and the events: a page view and what it showed."""
    assert view.page is not None
    out = Outgoing(view.page.status, page=view.page)
    out.headers.append(server_timing(view.decision_us))
    who = view.who
    private = view.personalized or who.previewing
    if private:  # this visitor's page: no cache may keep it
        out.headers.append(("cache-control", "private, no-store"))
    if who.previewing:
        out.headers.append(("x-edgepick-preview", "1" if who.preview else "invalid"))
        return out
    if not view.counted:  # not a view: the cookie stays as it was (or goes, without consent)
        out.headers += cookie_header(who, who.state, engine, config) if not who.stored else []
        return _private_with_cookie(out, private)
    remembered = [d for d in view.decisions if d.slot in view.shown] if view.logged else []
    state = visitors.remember(view.state, remembered, engine.site.epoch)
    out.headers += cookie_header(who, state, engine, config)
    _private_with_cookie(out, private)
    if view.logged and view.done is not None:  # streamed: log what it showed once it has passed
        view.done.then(partial(ship_shown, view, io, engine, config, delivery, state, presence))
    elif view.logged:
        ship(io, config, delivery, page_events(view, remembered, state, engine), built=True)
    return out


def _private_with_cookie(out: Outgoing, private: bool) -> Outgoing:
    """A reply that sets the visitor's cookie is theirs alone even when the page is not: shared
    caches must not keep it (the browser may, as the origin said)."""
    if not private and any(name == "set-cookie" for name, _ in out.headers):
        out.headers.append(("cache-control", "private"))
    return out


def ship_shown(
    view: View,
    io: EdgeIO,
    engine: Engine,
    config: EdgeConfig,
    delivery: DeliveryStats,
    state: VisitorState,
    presence: SlotPresence | None,
    complete: bool,
) -> None:
    """A streamed page's events, once the rewriter has met every slot it holds (``complete``)
    or given up waiting (``STREAM_WAIT_S``: a visitor gone mid-page still has the view logged,
    with the slots met so far): the page view, and an exposure per fresh decision the page
    really showed. Run by the runtime from the rewriter's end of document, after the response."""
    if presence is not None and complete:
        presence.learn(view.source, view.found - page_slots(view), view.expected)
    shown = [d for d in view.decisions if d.slot in view.found]
    ship(io, config, delivery, page_events(view, shown, state, engine), built=True)


def page_slots(view: View) -> set[str]:
    return {view.page_decision.slot} if view.page_decision is not None else set()


def page_events(
    view: View, shown: list[Decision], state: VisitorState, engine: Engine
) -> list[dict[str, object]]:
    """This view's page-view event, then one exposure per fresh decision the page showed."""
    category = route(engine.site.signals.categories, view.path)
    sid, user, visitor = engine.snapshot_id, state.user_id, state.visitor_id
    batch = [
        events.page_view(f"{view.nonce}-view", visitor, view.now_ms, view.path, category, user, sid)
    ]
    batch += [
        events.exposure(d, visitor, sid, view.now_ms, view.decision_us, view.who.context, user)
        for d in shown
    ]
    return batch
