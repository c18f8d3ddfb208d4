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
identify events (``"flags": [...]``) and ``conversion_flag`` once the user has converted, and
from the browser's behavioural signals (``signal_flags``).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from core.features import VisitorState, record_page_view
from core.model import Signals
from origin.engagement import engagement
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
    """A user's profile from their page views (see the module docstring), with the engagement
    flags of their history (``origin.engagement``: velocity trend, visit frequency)."""
    state = VisitorState(visitor_id=user, user_id=user)
    last_visitor = user
    times = []
    for view in views:
        state = record_page_view(state, view.ts, view.path, signals)
        last_visitor = view.visitor
        times.append(view.ts)
    engaged = engagement(times, signals.session_timeout).flags()
    return state._replace(visitor_id=last_visitor, flags=state.flags | flags | engaged)


def _flags(store: EventSource, linked: dict[str, str], conversion_flag: str) -> dict[str, set[str]]:
    """user -> flags: from identify events, browser signals and (``conversion_flag``) a
    conversion credited to them or a backend's purchase. A conversion belongs to the user of the
    exposure it names, else of its visitor: only the named exposures' owners are kept (memory
    follows conversions, not exposures)."""
    flags: dict[str, set[str]] = defaultdict(set)
    for event in store.identifies():
        flags[event["user"]].update(event.get("flags", []))
    for user, found in signal_flags(_signals(store), linked).items():
        flags[user].update(found)
    if conversion_flag:
        conversions = [
            (str(o["decision"] or ""), str(o["visitor"]))
            for o in store.outcomes()
            if o["type"] == "conversion"
        ]
        named = {d for d, _ in conversions if d}
        decision_owner: dict[str, str] = {}
        for e in store.exposures() if named else ():
            if e["id"] in named:
                user = e.get("user") or linked.get(e["visitor"], "")
                if user:
                    decision_owner[e["id"]] = user
        for decision, visitor in conversions:
            user = decision_owner.get(decision) or linked.get(visitor, "")
            if user:
                flags[user].add(conversion_flag)
        read = getattr(store, "server_events", None)  # a backend's purchases (server-side)
        for e in read() if callable(read) else ():
            user = e["user"] or linked.get(e["visitor"], "")
            if e["type"] == "purchase" and user:
                flags[user].add(conversion_flag)
    return flags


def build_profiles(
    store: EventSource,
    signals: Signals,
    users: Iterable[str] | None = None,
    conversion_flag: str = "buyer",
) -> dict[str, VisitorState]:
    """Stitched profiles for ``users`` (every known user when None), all in memory: for every
    user of a large store, ``iter_profiles`` gives the same profiles one at a time."""
    linked = links(store)
    views = page_views(store, linked)
    flags = _flags(store, linked, conversion_flag)
    # a user is known by an identify (a login) or a page view the edge tied to them; a decide
    # call for a user nobody has seen creates no profile
    known = set(views) | set(linked.values())
    wanted = known & set(users) if users is not None else known
    return {
        u: fold(u, views.get(u, []), signals, frozenset(flags.get(u, ()))) for u in sorted(wanted)
    }


# the page views of every user, sorted by SQLite (on disk past its cache), so one user's views
# arrive together: the owner is the view's user, else its visitor's latest identify
_VIEWS_BY_USER = """
WITH latest AS (
  SELECT visitor, user FROM (
    SELECT visitor, user, ROW_NUMBER() OVER (PARTITION BY visitor ORDER BY ts DESC, id DESC) AS rn
    FROM identifies
  ) WHERE rn = 1
)
SELECT owner, ts, visitor, path FROM (
  SELECT CASE WHEN p.user <> '' THEN p.user ELSE COALESCE(l.user, '') END AS owner,
    p.ts AS ts, p.visitor AS visitor, p.path AS path
  FROM page_views p LEFT JOIN latest l ON l.visitor = p.visitor
) WHERE owner <> ''
ORDER BY owner, ts / 1000, visitor, path
"""


class _Streamed:
    """A SQLite store read the way ``_flags`` needs it with bounded memory: each table
    streamed from a read-only connection of its own (the store's own readers fetch every row
    first), and of the exposures only those a conversion names (the only ones ``_flags`` looks
    up)."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA busy_timeout=10000")

    def _stream(self, sql: str) -> Iterator[sqlite3.Row]:
        cursor = self.db.execute(sql)
        while rows := cursor.fetchmany(4096):
            yield from rows

    def identifies(self) -> Iterator[dict[str, Any]]:
        for row in self._stream("SELECT * FROM identifies ORDER BY ts, id"):
            yield {**dict(row), "flags": json.loads(row["flags"])}

    def outcomes(self) -> Iterator[dict[str, Any]]:
        return (dict(r) for r in self._stream("SELECT * FROM outcomes ORDER BY ts, id"))

    def exposures(self) -> Iterator[dict[str, Any]]:
        named = "SELECT decision FROM outcomes WHERE type = 'conversion' AND decision <> ''"
        sql = f"SELECT id, user, visitor FROM exposures WHERE id IN ({named})"
        return (dict(r) for r in self._stream(sql))

    def signals(self) -> Iterator[dict[str, Any]]:
        return (dict(r) for r in self._stream("SELECT * FROM signals ORDER BY ts, id"))

    def server_events(self) -> Iterator[dict[str, Any]]:
        return (dict(r) for r in self._stream("SELECT * FROM server_events ORDER BY ts, id"))

    def page_views(self) -> Iterator[dict[str, Any]]:  # (EventSource's; iter_profiles sorts)
        return (dict(r) for r in self._stream("SELECT * FROM page_views ORDER BY ts, id"))


def iter_profiles(
    store: EventSource, signals: Signals, conversion_flag: str = "buyer"
) -> Iterator[tuple[str, VisitorState]]:
    """Every known user's profile, one at a time in user order: what ``build_profiles`` gives,
    with memory that does not grow with page views or exposures. From a SQLite store the page
    views come sorted by user from SQLite (``_VIEWS_BY_USER``, its sort spilling to disk) and each
    user is folded as their views end; what stays in memory is the visitor -> user links, the
    flags of users who have any, and the identified users' ids. Another source is read as
    ``build_profiles`` reads it."""
    path = getattr(store, "path", None)
    if path is None:
        yield from build_profiles(store, signals, None, conversion_flag).items()
        return
    streamed = _Streamed(str(path))
    try:
        linked = links(streamed)
        flags = _flags(streamed, linked, conversion_flag)
    finally:
        streamed.db.close()
    identified = iter(sorted(set(linked.values())))
    pending = next(identified, None)

    def folded(user: str, views: list[PageView]) -> VisitorState:
        return fold(user, views, signals, frozenset(flags.get(user, ())))

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute("PRAGMA busy_timeout=10000")
        current, views = "", list[PageView]()
        for owner, ts, visitor, page in db.execute(_VIEWS_BY_USER):
            if owner != current:
                if current:
                    yield current, folded(current, views)
                while pending is not None and pending < owner:  # identified, no page views
                    if pending != current:
                        yield pending, folded(pending, [])
                    pending = next(identified, None)
                if pending == owner:
                    pending = next(identified, None)
                current, views = owner, []
            views.append(PageView(int(ts) // 1000, visitor, page))
        if current:
            yield current, folded(current, views)
        while pending is not None:
            if pending != current:
                yield pending, folded(pending, [])
            pending = next(identified, None)
    finally:
        db.close()


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


# ---- browser signals -> profile flags (the edge reads them as `flags` and `flag:F` features) ----

ENGAGED_DEPTH = 75  # percent of a page scrolled that counts as reading it through
SIGNAL_FLAG_PREFIXES = ("cart:", "interest:", "form:", "clicked:")  # replaced, not merged, on merge


def _signals(store: EventSource) -> Iterator[dict[str, Any]]:
    """The store's browser signals (a source written before they existed has none)."""
    read = getattr(store, "signals", None)
    return iter(read()) if callable(read) else iter(())


def signal_flags(signals: Iterable[dict[str, Any]], linked: dict[str, str]) -> dict[str, set[str]]:
    """user -> flags from their visitors' browser signals (``core.events`` ``signal``), at most
    8 per user, each a feature the edge can target and learn on:

    - ``cart:CAT``: a category with more products added to the cart than removed (at most 2);
    - ``interest:CAT``: the category of most product views, weighted by 1/sampling rate;
    - ``searcher``: searched the site at least once;
    - ``engaged``: read at least 2 pages to ``ENGAGED_DEPTH`` % or further (scroll depth);
    - ``form:NAME``: submitted that form; ``form-abandoner``: abandoned more forms than submitted;
    - ``clicked:NAME``: the tracked element clicked most (``data-edgepick-track``).
    """
    cart: dict[str, Counter[str]] = defaultdict(Counter)
    views: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    clicks: dict[str, Counter[str]] = defaultdict(Counter)
    out: dict[str, set[str]] = defaultdict(set)
    deep: Counter[str] = Counter()
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    for e in signals:
        user = linked.get(e["visitor"], "")
        if not user:
            continue
        kind, action, name = e["signal"], e.get("action", ""), e.get("name", "")
        category = e.get("category", "")
        if kind == "product" and category and action in ("add", "remove"):
            cart[user][category] += 1 if action == "add" else -1
        elif kind == "product" and category:
            views[user][category] += 1.0 / float(e.get("rate", 1.0) or 1.0)
        elif kind == "search":
            out[user].add("searcher")
        elif kind == "scroll" and int(e.get("depth", 0)) >= ENGAGED_DEPTH:
            deep[user] += 1
        elif kind == "form":
            forms[user][action] += 1
            if action == "submit":
                out[user].add(f"form:{name}")
        elif kind == "track":
            clicks[user][name] += 1
    for user, counts in cart.items():
        held = sorted((c for c, n in counts.items() if n > 0), key=lambda c: (-counts[c], c))
        out[user].update(f"cart:{c}" for c in held[:2])
    for user, weights in views.items():
        out[user].add(f"interest:{min(weights, key=lambda c: (-weights[c], c))}")
    for user, counts in clicks.items():
        out[user].add(f"clicked:{min(counts, key=lambda c: (-counts[c], c))}")
    for user, n in deep.items():
        if n >= 2:
            out[user].add("engaged")
    for user, counts in forms.items():
        if counts["abandon"] > counts["submit"]:
            out[user].add("form-abandoner")
    return {user: set(sorted(found)[:8]) for user, found in out.items()}
