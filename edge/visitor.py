"""Who is visiting: the verified cookie, consent, preview, and the cookie to send back."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import sha256

from core import cookie, preview
from core.cookie import CookieStatus
from core.decide import Decision, fixed_decision, still_allowed
from core.engine import Engine, PreparedSlot
from core.features import RequestContext, VisitorState, record_page_view
from core.reason import Reason
from edge.config import EdgeConfig

PREVIEW_PARAM = "edgepick_preview"
MAX_UTM_FLAGS = 3  # campaign sources kept per visitor (the cookie has a byte budget)


@dataclass(frozen=True, slots=True)
class Visitor:
    state: VisitorState
    context: RequestContext
    status: str  # the cookie's status, or "no-consent" / "preview"
    stored: bool  # whether features are kept (consent and a configured keyring)
    preview: preview.Preview | None = None
    preview_error: str = ""  # why a preview token in the request was refused ("" if none was)

    @property
    def previewing(self) -> bool:
        """A preview was asked for, valid or not: nothing is logged and no cookie is set."""
        return self.preview is not None or bool(self.preview_error)


def identify(
    engine: Engine,
    config: EdgeConfig,
    cookies: Mapping[str, str],
    context: RequestContext,
    query: Mapping[str, str],
    now: int,
    token: str,
    turn_bots_away: bool = True,
) -> Visitor:
    """The visitor behind a request; ``token`` is fresh randomness for a new visitor id.

    ``turn_bots_away``: a bot or tool gets no stored state (pages, the decide API). The beacon
    passes False: what counts there is a valid cookie, which only a page view by a person set
    (browsers send unload beacons without the page's User-Agent override, for instance)."""
    fresh = VisitorState(token[:16])  # 64-bit visitor ids: short to hash, ample to tell apart
    refused = ""
    if PREVIEW_PARAM in query:
        found, reason = preview.decode(query[PREVIEW_PARAM], config.preview_key, now)
        if found is not None:
            state, ctx = preview.persona_state(found.persona, f"preview-{token[:8]}", now, context)
            return Visitor(state, ctx, "preview", False, found)
        refused = reason
    if turn_bots_away and context.device == "bot":  # no state: no cookie, never logged
        return Visitor(fresh, context, "bot", False, preview_error=refused)
    if not context.consent or config.keyring is None:
        status = "no-consent" if not context.consent else "no-keys"
        return Visitor(fresh, context, status, False, preview_error=refused)
    decoded = cookie.decode(cookies.get(engine.site.cookie.name), config.keyring, fresh)
    return Visitor(decoded.state, context, decoded.status.value, True, preview_error=refused)


def after_page_view(
    state: VisitorState, engine: Engine, context: RequestContext, now: int
) -> VisitorState:
    """Record the view; a campaign's UTM source is kept as a flag (``utm:newsletter``)."""
    flags: frozenset[str] = frozenset()
    utm = sum(1 for f in state.flags if f.startswith("utm:"))
    if context.utm_source and utm < MAX_UTM_FLAGS:
        flags = frozenset({f"utm:{context.utm_source.lower()[:24]}"})
    return record_page_view(state, now, context.path, engine.site.signals, flags)


def reusable(
    before: VisitorState, after: VisitorState, engine: Engine, context: RequestContext, now: int
) -> dict[str, tuple[str, str, float]]:
    """This session's decisions that still hold: same session and epoch, variant still active,
    and still allowed by the audience rules for this request."""
    same_session = before.visits > 0 and before.session_start == after.session_start
    if not same_session or before.decisions_epoch != engine.site.epoch:
        return {}
    kept = {}
    for slot, variant, decision_id, propensity in before.decisions:
        prepared = engine.slots.get(slot)
        if prepared is not None and prepared.index_of.get(variant, -1) in prepared.active:
            kept[slot] = (variant, decision_id, propensity)
    allowed = still_allowed(engine, after, context, now, {s: v[0] for s, v in kept.items()})
    return {s: v for s, v in kept.items() if s in allowed}


def cached_decision(prepared: PreparedSlot, variant: str, decision_id: str, p: float) -> Decision:
    step = ("reused from this session (decision {})", (decision_id,))
    arm = prepared.index_of[variant]
    return fixed_decision(prepared, arm, Reason.CACHED, decision_id, (step,), propensity=p)


def remember(state: VisitorState, decisions: list[Decision], epoch: int) -> VisitorState:
    """Add fresh decisions to the session cache (preview and holdout ones are not worth keeping)."""
    if state.decisions_epoch != epoch:
        state = state._replace(decisions=(), decisions_epoch=epoch)
    known = {d[0]: d for d in state.decisions}
    for d in decisions:
        if d.reason is not Reason.PREVIEW:
            known[d.slot] = (d.slot, d.variant, d.decision_id, d.propensity)
    return state._replace(decisions=tuple(known.values()))


def set_cookie(visitor: Visitor, engine: Engine, config: EdgeConfig) -> str | None:
    """The Set-Cookie value: the signed state, a deletion without consent, or nothing."""
    spec = engine.site.cookie
    secure = "; Secure" if config.secure_cookie else ""
    if visitor.status == "no-consent":
        return f"{spec.name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"
    if not visitor.stored or config.keyring is None:
        return None
    try:
        value = cookie.encode(visitor.state, config.keyring, spec.max_bytes)
    except ValueError:  # over budget whatever is dropped: keep the visitor's old cookie
        return None
    return f"{spec.name}={value}; Path=/; Max-Age={spec.max_age}; HttpOnly; SameSite=Lax{secure}"


def is_valid_cookie(status: str) -> bool:
    return status in (CookieStatus.OK.value, CookieStatus.ROTATED.value)


def receipt_keys(config: EdgeConfig) -> tuple[bytes, ...]:
    """Keys of the decide API's exposure receipts (``core.events.receipt``), derived from the
    cookie keys (the signing one first, every one verifies: they rotate together)."""
    if config.keyring is None:
        return ()
    ring = config.keyring
    ordered = [ring.keys[ring.current], *(v for k, v in ring.keys.items() if k != ring.current)]
    return tuple(hmac.new(key, b"edgepick-receipt", sha256).digest() for key in ordered)
