"""What the origin recorded, for operators debugging personalization (``edgepick inspect``).

Three views, each a plain JSON-ready dict (stable keys, sorted where order is not time) and a
short human rendering:

- ``decision(store, id)``: the exposure logged for one decision and the outcomes credited to it:
  ``decision_id, visitor, user, slot, variant, propensity, policy, reason, snapshot, ts, path,
  outcomes[{kind, value}]``, and for policy draws the distribution logged with it (``eligible``
  arm indices, ``probs``);
- ``visitor(store, id)``: one visitor's events: ``visitor, user, exposures[...], outcomes[...],
  page_views[...]``;
- ``user(store, signals, id)``: the stitched profile (``origin.stitch.profile_for``, the same
  fold the sync job publishes): ``user, visitors[], visits, page_views, stage,
  affinity{category: score}, first_seen, last_seen, flags``.

Each returns ``None`` when the store knows nothing of the id. Reads go through the store's
lookups (``SqliteStore.decision``, ``decision_outcomes``, ``visitor_events``, ``user_events``,
``user_of``), all indexed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol

from core.model import Signals
from origin.stitch import links, profile_for
from origin.store import EventSlice, EventStore

AFFINITY_DIGITS = 6  # JSON rounding of affinity scores: stable across float noise


class Inspectable(EventStore, Protocol):
    """The store lookups ``inspect`` needs beyond ``EventStore`` (``SqliteStore`` has them)."""

    def decision(self, decision_id: str) -> dict[str, Any] | None: ...

    def decision_outcomes(self, decision_id: str) -> list[dict[str, Any]]: ...

    def visitor_events(self, visitor: str) -> EventSlice: ...


def _outcome(o: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": str(o["type"]), "value": float(o["value"])}


def decision(store: Inspectable, decision_id: str) -> dict[str, Any] | None:
    """One decision as the origin stored it, with its outcomes (oldest first)."""
    e = store.decision(decision_id)
    if e is None:
        return None
    found: dict[str, Any] = {
        "decision_id": e["id"],
        "visitor": e["visitor"],
        "user": e["user"] or store.user_of(e["visitor"]),
        "slot": e["slot"],
        "variant": e["variant"],
        "propensity": float(e["propensity"]),
        "policy": e["policy"],
        "reason": e["reason"],
        "snapshot": e["snapshot"],
        "ts": int(e["ts"]),
        "path": e["path"],
        "outcomes": [_outcome(o) for o in store.decision_outcomes(decision_id)],
    }
    if "eligible" in e and "probs" in e:  # the policy's distribution, logged for policy draws
        found["eligible"] = [int(i) for i in e["eligible"]]
        found["probs"] = [float(p) for p in e["probs"]]
    return found


def visitor(store: Inspectable, visitor_id: str) -> dict[str, Any] | None:
    """One visitor's exposures and outcomes (oldest first) and the user they are linked to."""
    events = store.visitor_events(visitor_id)
    if not (
        events.exposure_events
        or events.outcome_events
        or events.identify_events
        or events.page_view_events
    ):
        return None
    return {
        "visitor": visitor_id,
        "user": store.user_of(visitor_id),
        "exposures": [
            {
                "decision_id": e["id"],
                "ts": int(e["ts"]),
                "slot": e["slot"],
                "variant": e["variant"],
                "propensity": float(e["propensity"]),
                "path": e["path"],
            }
            for e in events.exposure_events
        ],
        "outcomes": [
            {"decision_id": o["decision"], "ts": int(o["ts"]), **_outcome(o)}
            for o in events.outcome_events
        ],
        "page_views": [
            {"ts": int(p["ts"]), "path": p["path"], "category": p["category"]}
            for p in events.page_view_events
        ],
    }


def user(store: EventStore, signals: Signals, user_id: str) -> dict[str, Any] | None:
    """A user's stitched profile, as the sync job would publish it."""
    state = profile_for(store, signals, user_id)
    if state is None:
        return None
    events = store.user_events(user_id)
    linked = {v for v, u in links(events).items() if u == user_id}
    named = {e["visitor"] for e in events.exposure_events if e.get("user") == user_id}
    return {
        "user": user_id,
        "visitors": sorted(linked | named),
        "visits": state.visits,
        "page_views": state.page_views,
        "stage": state.stage,
        "affinity": {c: round(s, AFFINITY_DIGITS) for c, s in sorted(state.affinity)},
        "first_seen": state.first_seen,
        "last_seen": state.last_seen,
        "flags": sorted(state.flags),
    }


def _when(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def render_decision(d: Mapping[str, Any]) -> str:
    lines = [
        f"decision {d['decision_id']}",
        f"  visitor     {d['visitor']}" + (f" (user {d['user']})" if d["user"] else ""),
        f"  slot        {d['slot']} -> {d['variant']}",
        f"  propensity  {d['propensity']:.6g} ({d['policy']}, {d['reason']})",
        f"  page        {d['path'] or '(no path logged)'}",
        *(
            [f"  policy over arms {d['eligible']}: {', '.join(f'{p:.4g}' for p in d['probs'])}"]
            if "probs" in d
            else []
        ),
        f"  shown       {_when(d['ts'])} UTC, snapshot {d['snapshot']}",
    ]
    if d["outcomes"]:
        lines.append(f"  outcomes    {len(d['outcomes'])}:")
        lines += [f"    {o['kind']:<11} {o['value']:g}" for o in d["outcomes"]]
    else:
        lines.append("  outcomes    none")
    return "\n".join(lines)


def render_visitor(v: Mapping[str, Any]) -> str:
    lines = [f"visitor {v['visitor']}" + (f" (user {v['user']})" if v["user"] else " (anonymous)")]
    lines.append(f"  exposures   {len(v['exposures'])}")
    lines += [
        f"    {_when(e['ts'])}  {e['path'] or '-':<16} {e['slot']:<10} {e['variant']:<20} "
        f"p={e['propensity']:.4g}  {e['decision_id']}"
        for e in v["exposures"]
    ]
    lines.append(f"  outcomes    {len(v['outcomes'])}")
    lines += [
        f"    {_when(o['ts'])}  {o['kind']:<11} {o['value']:<8g} {o['decision_id']}"
        for o in v["outcomes"]
    ]
    lines.append(f"  page views  {len(v['page_views'])}")
    lines += [
        f"    {_when(p['ts'])}  {p['path']:<24} {p['category'] or '-'}" for p in v["page_views"]
    ]
    return "\n".join(lines)


def render_user(u: Mapping[str, Any]) -> str:
    affinity = ", ".join(
        f"{c} {s:.3f}" for c, s in sorted(u["affinity"].items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return "\n".join(
        [
            f"user {u['user']}",
            f"  visitors    {', '.join(u['visitors']) or '-'}",
            f"  visits      {u['visits']}",
            f"  page views  {u['page_views']}",
            f"  stage       {u['stage'] or '-'}",
            f"  affinity    {affinity or '-'}",
            f"  flags       {', '.join(u['flags']) or '-'}",
        ]
    )
