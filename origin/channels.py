"""Decisions for other channels (email, app): ``POST /v1/decide`` on the origin service.

Request: ``{"visitor": ID}`` or ``{"user": ID}`` (or both), ``"context": {...}`` (the
``RequestContext`` fields: path, device, country, referrer, utm_source, utm_campaign, hour,
weekday, consent, extra) and optionally ``"slots": [...]`` (default: all). The decision is made
by ``core.decide.decide`` on the registry's current snapshot, for the user's stitched profile
(or the visitor's, when that visitor is linked to a user), and every decision is logged to the
store as an exposure exactly as the edge logs it (policy, propensity, features). With
``"consent": false`` in the context the decision is context-only (no profile is read) and
nothing is logged, as at the edge.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from core.decide import decide
from core.engine import Engine
from core.events import exposure
from core.features import RequestContext, VisitorState
from origin.collector import Refused
from origin.registry import Registry
from origin.stitch import profile_for
from origin.store import EventStore

_CONTEXT_TYPES: dict[str, type | tuple[type, ...]] = {
    "path": str,
    "device": str,
    "country": str,
    "referrer": str,
    "utm_source": str,
    "utm_campaign": str,
    "hour": int,
    "weekday": int,
    "consent": bool,
    "extra": dict,
}


def parse_context(value: Any) -> RequestContext:
    if value is None:
        return RequestContext()
    if not isinstance(value, dict):
        raise Refused(400, "context: expected an object", field="context")
    for key, item in value.items():
        wanted = _CONTEXT_TYPES.get(key)
        if wanted is None:
            known = ", ".join(_CONTEXT_TYPES)
            raise Refused(400, f"context.{key}: unknown (known: {known})", field=f"context.{key}")
        if not isinstance(item, wanted) or (wanted is int and isinstance(item, bool)):
            name = wanted.__name__ if isinstance(wanted, type) else "value"
            raise Refused(400, f"context.{key}: expected {name}", field=f"context.{key}")
    return RequestContext(**value)


class Decider:
    def __init__(
        self,
        registry: Registry,
        store: EventStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.store = store
        self.clock = clock
        self._engine: Engine | None = None

    def engine(self) -> Engine:
        sid = self.registry.current()
        if sid is None:
            raise Refused(503, "no snapshot published yet: nothing to decide with")
        if self._engine is None or self._engine.snapshot_id != sid:
            self._engine = Engine.from_bytes(self.registry.get(sid))
        return self._engine

    def state(self, engine: Engine, visitor: str, user: str) -> VisitorState:
        if not user and visitor:
            user = self.store.user_of(visitor)
        if user:
            profile = profile_for(self.store, engine.site.signals, user)
            if profile is not None:
                return profile._replace(visitor_id=visitor or profile.visitor_id, user_id=user)
        return VisitorState(visitor_id=visitor or user, user_id=user)

    def decide(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise Refused(400, "body: expected an object")
        visitor, user = payload.get("visitor", ""), payload.get("user", "")
        if not isinstance(visitor, str) or not isinstance(user, str) or not (visitor or user):
            raise Refused(400, "visitor/user: give a visitor id or a user id (strings)")
        slots = payload.get("slots")
        if slots is not None and (
            not isinstance(slots, list) or not all(isinstance(s, str) for s in slots)
        ):
            raise Refused(400, "slots: expected a list of slot names", field="slots")
        context = parse_context(payload.get("context"))
        engine = self.engine()
        if context.consent:
            state = self.state(engine, visitor, user)
        else:  # as at the edge: a context-only decision, nothing read about them, nothing kept
            state = VisitorState(visitor_id=visitor or user)
        now = self.clock()
        started = time.perf_counter()
        nonce = f"api:{time.time_ns()}"
        decisions = decide(engine, state, context, int(now), slots, nonce=nonce)
        decision_us = int((time.perf_counter() - started) * 1e6)
        events = []
        for d in decisions:
            event = exposure(
                d,
                state.visitor_id,
                engine.snapshot_id,
                int(now * 1000),
                decision_us,
                context,
                user,
            )
            event["path"] = context.path
            event["channel"] = "api"
            events.append(event)
        if context.consent:
            self.store.append(events)
        content = {s.name: {v.id: v.content for v in s.variants} for s in engine.site.slots}
        return {
            "snapshot": engine.snapshot_id,
            "visitor": state.visitor_id,
            "user": user,
            "decisions": [
                {
                    "slot": d.slot,
                    "variant": d.variant,
                    "content": content[d.slot][d.variant],
                    "decision_id": d.decision_id,
                    "propensity": d.propensity,
                    "reason": d.reason.value,
                    "policy": d.policy,
                }
                for d in decisions
            ],
        }
