"""Session stitching: identify events link visitors to users; profiles are folded from events.

An ``identify`` event says visitor V is user U from then on; the link is retroactive, so V's
earlier anonymous exposures join U's profile, and several devices (visitors) of one user merge.
An exposure that names its user directly (``user`` set by the edge) belongs to that user.

A profile is the ``VisitorState`` the edge would have built had it seen every page view of all
of the user's visitors, in time order, through ``core.features.record_page_view``: visits
(sessions), first/last seen, funnel stage, decayed category affinities, flags. Page views are
the edge's ``page_view`` events (one per page a consenting, stored visitor was shown, whether
its decisions were fresh or reused from the session), folded with the same function and the
same signals as the cookie, so a profile agrees with the cookie of a single-device user. A page
view belongs to the user it names, else to the user its visitor is linked to. Flags come from
identify events (``"flags": [...]``) and ``conversion_flag`` once the user has converted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from core.features import VisitorState, record_page_view
from core.model import Signals
from origin.store import EventSource, EventStore


@dataclass(frozen=True, slots=True)
class PageView:
    ts: int  # unix seconds
    visitor: str
    path: str


def links(store: EventSource) -> dict[str, str]:
    """visitor -> user, from identify events (the latest identify of a visitor wins)."""
    out: dict[str, str] = {}
    for event in store.identifies():
        out[event["visitor"]] = event["user"]
    return out


def page_views(store: EventSource, linked: dict[str, str]) -> dict[str, list[PageView]]:
    """user -> their page views, oldest first (from the edge's ``page_view`` events)."""
    out: dict[str, list[PageView]] = defaultdict(list)
    for e in store.page_views():
        user = e.get("user") or linked.get(e["visitor"], "")
        if user:
            out[user].append(PageView(int(e["ts"]) // 1000, e["visitor"], e["path"]))
    for views in out.values():
        views.sort(key=lambda v: (v.ts, v.visitor, v.path))
    return out


def fold(
    user: str, views: Iterable[PageView], signals: Signals, flags: frozenset[str] = frozenset()
) -> VisitorState:
    """A user's profile from their page views (see the module docstring)."""
    state = VisitorState(visitor_id=user, user_id=user)
    last_visitor = user
    for view in views:
        state = record_page_view(state, view.ts, view.path, signals)
        last_visitor = view.visitor
    return state._replace(visitor_id=last_visitor, flags=state.flags | flags)


def build_profiles(
    store: EventSource,
    signals: Signals,
    users: Iterable[str] | None = None,
    conversion_flag: str = "buyer",
) -> dict[str, VisitorState]:
    """Stitched profiles for ``users`` (every known user when None)."""
    linked = links(store)
    views = page_views(store, linked)
    flags: dict[str, set[str]] = defaultdict(set)
    for event in store.identifies():
        flags[event["user"]].update(event.get("flags", []))
    decision_owner: dict[str, str] = {}
    if conversion_flag:
        for e in store.exposures():
            user = e.get("user") or linked.get(e["visitor"], "")
            if user:
                decision_owner[e["id"]] = user
        for o in store.outcomes():
            user = decision_owner.get(o["decision"]) or linked.get(o["visitor"], "")
            if o["type"] == "conversion" and user:
                flags[user].add(conversion_flag)
    # a user is known by an identify (a login) or a page view the edge tied to them; a decide
    # call for a user nobody has seen creates no profile
    known = set(views) | set(linked.values())
    wanted = known & set(users) if users is not None else known
    return {
        u: fold(u, views.get(u, []), signals, frozenset(flags.get(u, ()))) for u in sorted(wanted)
    }


def profile_for(store: EventStore, signals: Signals, user: str) -> VisitorState | None:
    """One user's profile, or None when the origin has never heard of them.

    Folded from the slice of events it depends on (``store.user_events``, read through
    indexes), not the whole store: the same profile ``build_profiles`` gives that user.
    """
    events = store.user_events(user)
    state = build_profiles(events, signals, [user]).get(user)
    if state is None or (state.page_views == 0 and user not in links(events).values()):
        return None
    return state
