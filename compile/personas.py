"""Described visitors (personas) -> visitor state and request context, for explain and preview."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compile.problems import Reader
from core.features import RequestContext, VisitorState
from core.hashing import short_id

PERSONA_KEYS = {
    "description",
    "visitor_id",
    "visits",
    "page_views",
    "stage",
    "affinity",
    "flags",
    "user_id",
    "last_seen_hours_ago",
    "first_seen_days_ago",
    "context",
}
CONTEXT_KEYS = {
    "path",
    "device",
    "country",
    "referrer",
    "utm_source",
    "utm_campaign",
    "hour",
    "weekday",
    "consent",
    "extra",
}


def persona(
    spec: Mapping[str, Any], now: int, name: str = "persona"
) -> tuple[VisitorState, RequestContext]:
    """Build (state, context) from a persona table; raises ConfigError listing every problem."""
    r = Reader()
    r.known(spec, PERSONA_KEYS, name)
    visits = r.integer(spec, "visits", name, 1)
    hours_ago = r.number(spec, "last_seen_hours_ago", name, 0.0, 0.0, None)
    days_ago = r.number(spec, "first_seen_days_ago", name, max(hours_ago / 24, 0.0), 0.0, None)
    affinity = r.table(spec, "affinity", name)
    for category, score in affinity.items():
        if not isinstance(score, int | float) or isinstance(score, bool) or score < 0:
            r.add(f"{name}.affinity.{category}", "expected a number >= 0", score)
    last_seen = now - round(hours_ago * 3600) if visits else 0
    state = VisitorState(
        visitor_id=r.string(spec, "visitor_id", name, short_id(name)),
        visits=visits,
        page_views=r.integer(spec, "page_views", name, visits),
        first_seen=now - round(days_ago * 86400) if visits else 0,
        last_seen=last_seen,
        session_start=last_seen,
        stage=r.string(spec, "stage", name, ""),
        affinity=tuple(
            sorted(
                ((c, float(s)) for c, s in affinity.items() if isinstance(s, int | float)),
                key=lambda kv: -kv[1],
            )
        ),
        flags=frozenset(r.strings(spec, "flags", name, [])),
        user_id=r.string(spec, "user_id", name, ""),
    )
    ctx = r.table(spec, "context", name)
    cpath = f"{name}.context"
    r.known(ctx, CONTEXT_KEYS, cpath)
    context = RequestContext(
        path=r.string(ctx, "path", cpath, "/"),
        device=r.string(ctx, "device", cpath, "desktop"),
        country=r.string(ctx, "country", cpath, ""),
        referrer=r.string(ctx, "referrer", cpath, "direct"),
        utm_source=r.string(ctx, "utm_source", cpath, ""),
        utm_campaign=r.string(ctx, "utm_campaign", cpath, ""),
        hour=r.integer(ctx, "hour", cpath, 12),
        weekday=r.integer(ctx, "weekday", cpath, 2),
        consent=r.boolean(ctx, "consent", cpath, True),
        extra=r.table(ctx, "extra", cpath),
    )
    r.raise_if_any()
    return state, context
