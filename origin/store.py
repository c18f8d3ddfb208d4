"""The event store: a small interface, and the embedded SQLite default.

Events are validated by ``core.events.problem`` before they get here. ``append`` is idempotent
by event id (``INSERT OR IGNORE``): redelivered events are counted as duplicates, never twice.
``SqliteStore`` runs in WAL mode with ``synchronous=FULL``, so when ``append`` returns the
batch is committed and fsynced: the collector acknowledges only after that.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.events import (
    EXPOSURE,
    IDENTIFY,
    OUTCOMES,
    PAGE_VIEW,
    SERVER_TYPES,
    SIGNAL,
    VITAL_METRICS,
    VITALS,
    login_identify,
)


@dataclass(frozen=True, slots=True)
class Appended:
    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class Joined:
    """One exposure with its outcomes inside the attribution windows."""

    exposure: dict[str, Any]
    clicks: int
    conversions: int
    value: float


class EventSource(Protocol):
    """Events to read in store order: a whole store, or a slice of one (stitching reads these)."""

    def exposures(self) -> Iterator[dict[str, Any]]: ...

    def outcomes(self) -> Iterator[dict[str, Any]]: ...

    def identifies(self) -> Iterator[dict[str, Any]]: ...

    def page_views(self) -> Iterator[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class EventSlice:
    """Some of a store's events, in the store's order, readable like the store (stitching).

    ``SqliteStore.user_events`` cuts the slice one user's profile depends on, through indexes.
    """

    exposure_events: tuple[dict[str, Any], ...]
    outcome_events: tuple[dict[str, Any], ...]
    identify_events: tuple[dict[str, Any], ...]
    page_view_events: tuple[dict[str, Any], ...] = ()
    signal_events: tuple[dict[str, Any], ...] = ()
    server: tuple[dict[str, Any], ...] = ()  # server-side events (purchases, logins...)

    def exposures(self) -> Iterator[dict[str, Any]]:
        return iter(self.exposure_events)

    def server_events(self, since_ms: int = 0) -> Iterator[dict[str, Any]]:
        return (e for e in self.server if e["ts"] >= since_ms)

    def signals(self) -> Iterator[dict[str, Any]]:
        return iter(self.signal_events)

    def page_views(self) -> Iterator[dict[str, Any]]:
        return iter(self.page_view_events)

    def outcomes(self) -> Iterator[dict[str, Any]]:
        return iter(self.outcome_events)

    def identifies(self) -> Iterator[dict[str, Any]]:
        return iter(self.identify_events)


class EventStore(Protocol):
    """What the origin needs from an event store (a distributed engine can take over)."""

    def append(self, events: Sequence[Mapping[str, Any]]) -> Appended: ...

    def exposures(
        self, since_ms: int = 0, until_ms: int | None = None
    ) -> Iterator[dict[str, Any]]: ...

    def outcomes(self, since_ms: int = 0) -> Iterator[dict[str, Any]]: ...

    def identifies(self) -> Iterator[dict[str, Any]]: ...

    def page_views(self) -> Iterator[dict[str, Any]]: ...

    def joined(
        self, click_window_ms: int, conversion_window_ms: int, since_ms: int = 0
    ) -> Iterator[Joined]: ...

    def volume(self, since_ms: int, bucket_ms: int) -> dict[tuple[str, int], int]: ...

    def count(self, kind: str) -> int: ...

    def vitals_by_decision(
        self, since_ms: int = 0, until_ms: int | None = None
    ) -> Iterator[dict[str, Any]]: ...

    def user_events(self, user: str) -> EventSlice: ...

    def user_of(self, visitor: str) -> str: ...

    def close(self) -> None: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS exposures (
    id TEXT PRIMARY KEY, ts INTEGER NOT NULL, visitor TEXT NOT NULL, user TEXT NOT NULL,
    slot TEXT NOT NULL, variant TEXT NOT NULL, propensity REAL NOT NULL, policy TEXT NOT NULL,
    reason TEXT NOT NULL, snapshot TEXT NOT NULL, features TEXT NOT NULL,
    decision_us INTEGER NOT NULL, device TEXT NOT NULL, country TEXT NOT NULL, path TEXT NOT NULL,
    segment TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS exposures_ts ON exposures (ts);
CREATE INDEX IF NOT EXISTS exposures_visitor ON exposures (visitor);
CREATE TABLE IF NOT EXISTS outcomes (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, ts INTEGER NOT NULL, visitor TEXT NOT NULL,
    decision TEXT NOT NULL, value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_decision ON outcomes (decision);
CREATE INDEX IF NOT EXISTS outcomes_ts ON outcomes (ts);
CREATE TABLE IF NOT EXISTS identifies (
    id TEXT PRIMARY KEY, ts INTEGER NOT NULL, visitor TEXT NOT NULL, user TEXT NOT NULL,
    flags TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS identifies_user ON identifies (user);
CREATE INDEX IF NOT EXISTS identifies_visitor ON identifies (visitor);
CREATE INDEX IF NOT EXISTS exposures_user ON exposures (user);
CREATE INDEX IF NOT EXISTS outcomes_visitor ON outcomes (visitor);
CREATE TABLE IF NOT EXISTS page_views (
    id TEXT PRIMARY KEY, ts INTEGER NOT NULL, visitor TEXT NOT NULL, user TEXT NOT NULL,
    path TEXT NOT NULL, category TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS page_views_visitor ON page_views (visitor);
CREATE INDEX IF NOT EXISTS page_views_user ON page_views (user);
CREATE TABLE IF NOT EXISTS vitals (
    id TEXT PRIMARY KEY, ts INTEGER NOT NULL, visitor TEXT NOT NULL, path TEXT NOT NULL,
    decisions TEXT NOT NULL, lcp REAL, inp REAL, cls REAL, ttfb REAL, fcp REAL, dcl REAL,
    load REAL
);
CREATE INDEX IF NOT EXISTS vitals_ts ON vitals (ts);
CREATE TABLE IF NOT EXISTS server_events (
    type TEXT NOT NULL, id TEXT NOT NULL, ts INTEGER NOT NULL, visitor TEXT NOT NULL,
    user TEXT NOT NULL, value REAL NOT NULL, currency TEXT NOT NULL, ref TEXT NOT NULL,
    plan TEXT NOT NULL, PRIMARY KEY (type, id)
);
CREATE INDEX IF NOT EXISTS server_events_visitor ON server_events (visitor);
CREATE INDEX IF NOT EXISTS server_events_user ON server_events (user);
CREATE INDEX IF NOT EXISTS server_events_ref ON server_events (ref);
CREATE TABLE IF NOT EXISTS signals (
    id TEXT PRIMARY KEY, ts INTEGER NOT NULL, visitor TEXT NOT NULL, signal TEXT NOT NULL,
    path TEXT NOT NULL, action TEXT NOT NULL, name TEXT NOT NULL, category TEXT NOT NULL,
    depth INTEGER NOT NULL, query TEXT NOT NULL, rate REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS signals_visitor ON signals (visitor);
"""
VISITOR_WINDOW_MS = 24 * 3_600_000  # visitor-level conversions shown per decision (inspect)
SKEW_MS = 60_000  # clock skew tolerated between edge locations (an outcome "before" its exposure)
VITAL_COLUMNS = tuple(VITAL_METRICS)  # the vitals table's metric columns (NULL: not measured)
# exposures: decision_us is stored as -1 when the edge could not measure it (read back as None);
# eligible/probs (the policy's distribution, policy draws only) as JSON, "" when not logged
NOT_MEASURED = -1
_ADDED_COLUMNS = {
    "segment": "TEXT NOT NULL DEFAULT ''",
    "eligible": "TEXT NOT NULL DEFAULT ''",
    "probs": "TEXT NOT NULL DEFAULT ''",
}

# server-side purchases and subscriptions, net of their refunds; one refunded in full credits none
SERVER_CREDITS = """(SELECT type, id, ts, visitor, user, net FROM (
  SELECT p.type, p.id, p.ts, p.visitor, p.user, MAX(p.value - COALESCE((SELECT TOTAL(r.value)
    FROM server_events r WHERE r.type = 'refund' AND r.ref = p.id), 0), 0.0) AS net,
    p.value AS gross
  FROM server_events p WHERE p.type IN ('purchase', 'subscribe'))
  WHERE net > 0 OR gross = 0)"""
# whose exposures a server-side event credits: its visitor's, its user's (named on the exposure,
# or any visitor an identify linked to the user); one event credits one exposure at most once
_SERVER_MATCHES = (
    "s.visitor <> '' AND e.visitor = s.visitor",
    "s.user <> '' AND e.user = s.user",
    "s.user <> '' AND e.visitor IN (SELECT visitor FROM identifies WHERE user = s.user)",
)
_LINKED = "SELECT DISTINCT visitor FROM identifies WHERE user = ?"
_NAMED = "SELECT DISTINCT visitor FROM exposures WHERE user = ?"
_EACH = "(SELECT value FROM json_each(?))"  # the members of a JSON array parameter

_EXPOSURE_COLUMNS = (
    "id",
    "ts",
    "visitor",
    "user",
    "slot",
    "variant",
    "propensity",
    "policy",
    "reason",
    "snapshot",
    "features",
    "decision_us",
    "device",
    "country",
    "path",
    "segment",
    "eligible",
    "probs",
)


def _text(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key, "")
    return value if isinstance(value, str) else ""


def _flags(event: Mapping[str, Any]) -> list[str]:
    flags = event.get("flags", [])
    return [f for f in flags if isinstance(f, str)] if isinstance(flags, list) else []


class SqliteStore:
    """The embedded default store: one SQLite file, WAL, ``synchronous=FULL``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(exposures)")}
        for name, kind in _ADDED_COLUMNS.items():  # a store written before the column existed
            if name not in columns:
                self._db.execute(f"ALTER TABLE exposures ADD COLUMN {name} {kind}")

    def append(self, events: Sequence[Mapping[str, Any]]) -> Appended:
        """Write a batch in one transaction; returns once it is committed to disk."""
        accepted = 0
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for event in events:
                    cur.execute(*self._insert(event))
                    accepted += cur.rowcount
                    linked = login_identify(event)  # a backend's login links visitor and user
                    if linked is not None:
                        cur.execute(*self._insert(linked))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return Appended(accepted, len(events) - accepted)

    @staticmethod
    def _insert(event: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        kind = event["type"]
        if kind == EXPOSURE:
            row: tuple[Any, ...] = (
                event["id"],
                event["ts"],
                event["visitor"],
                _text(event, "user"),
                event["slot"],
                event["variant"],
                float(event["propensity"]),
                event["policy"],
                _text(event, "reason"),
                event["snapshot"],
                json.dumps([float(x) for x in event["features"]]),
                event.get("decision_us", NOT_MEASURED),
                _text(event, "device"),
                _text(event, "country"),
                _text(event, "path"),
                _text(event, "segment"),
                json.dumps(event["eligible"]) if "eligible" in event else "",
                json.dumps(event["probs"]) if "probs" in event else "",
            )
            marks = ",".join("?" * len(row))
            names = ",".join(_EXPOSURE_COLUMNS)
            return f"INSERT OR IGNORE INTO exposures ({names}) VALUES ({marks})", row
        if kind in OUTCOMES:
            value = float(event.get("value", 0.0) or 0.0)
            row = (event["id"], kind, event["ts"], event["visitor"], event["decision"], value)
            return "INSERT OR IGNORE INTO outcomes VALUES (?,?,?,?,?,?)", row
        if kind == IDENTIFY:
            flags = json.dumps(_flags(event))
            row = (event["id"], event["ts"], event["visitor"], event["user"], flags)
            return "INSERT OR IGNORE INTO identifies VALUES (?,?,?,?,?)", row
        if kind == VITALS:
            metrics = tuple(
                float(event[m]) if event.get(m) is not None else None for m in VITAL_COLUMNS
            )
            row = (event["id"], event["ts"], event["visitor"], _text(event, "path"))
            row += (json.dumps([d for d in event["decisions"] if isinstance(d, str)]), *metrics)
            names = ",".join(("id", "ts", "visitor", "path", "decisions", *VITAL_COLUMNS))
            marks = ",".join("?" * len(row))
            return f"INSERT OR IGNORE INTO vitals ({names}) VALUES ({marks})", row
        if kind == PAGE_VIEW:
            row = (event["id"], event["ts"], event["visitor"], _text(event, "user"))
            row += (event["path"], event["category"])
            return "INSERT OR IGNORE INTO page_views VALUES (?,?,?,?,?,?)", row
        if kind == SIGNAL:
            keys = ("id", "ts", "visitor", "signal", "path", "action", "name", "category")
            row = tuple(event[k] if k in ("id", "ts") else _text(event, k) for k in keys)
            row += (int(event.get("depth", 0)), _text(event, "query"), float(event.get("rate", 1)))
            return "INSERT OR IGNORE INTO signals VALUES (?,?,?,?,?,?,?,?,?,?,?)", row
        if kind in SERVER_TYPES:
            row = (kind, event["id"], event["ts"], _text(event, "visitor"), _text(event, "user"))
            row += (float(event.get("value", 0.0)), _text(event, "currency"), _text(event, "order"))
            row += (_text(event, "plan"),)
            return "INSERT OR IGNORE INTO server_events VALUES (?,?,?,?,?,?,?,?,?)", row
        raise ValueError(f"event {event.get('id')!r}: unknown type {kind!r}")

    def _rows(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _scan(self, sql: str, args: Any, chunk: int = 4096) -> Iterator[sqlite3.Row]:
        """Rows in chunks on a reader connection of its own: memory stays bounded, and writers
        (the collector) carry on meanwhile (WAL readers see one consistent snapshot)."""
        reader = sqlite3.connect(str(self.path), isolation_level=None)
        reader.row_factory = sqlite3.Row
        try:
            cursor = reader.execute(sql, args)
            while rows := cursor.fetchmany(chunk):
                yield from rows
        finally:
            reader.close()

    @staticmethod
    def _exposure(row: sqlite3.Row) -> dict[str, Any]:
        event = dict(row)
        event["type"] = EXPOSURE
        event["features"] = json.loads(event["features"])
        if event["decision_us"] == NOT_MEASURED:
            event["decision_us"] = None
        for name in ("eligible", "probs"):
            if event.get(name):
                event[name] = json.loads(event[name])
            else:
                event.pop(name, None)
        return event

    def exposures(self, since_ms: int = 0, until_ms: int | None = None) -> Iterator[dict[str, Any]]:
        until = until_ms if until_ms is not None else 2**62
        rows = self._rows(
            "SELECT * FROM exposures WHERE ts >= ? AND ts < ? ORDER BY ts, id", (since_ms, until)
        )
        return (self._exposure(r) for r in rows)

    def outcomes(self, since_ms: int = 0) -> Iterator[dict[str, Any]]:
        rows = self._rows("SELECT * FROM outcomes WHERE ts >= ? ORDER BY ts, id", (since_ms,))
        return (dict(r) for r in rows)

    def identifies(self) -> Iterator[dict[str, Any]]:
        rows = self._rows("SELECT * FROM identifies ORDER BY ts, id")
        return (self._identify(r) for r in rows)

    def page_views(self, since_ms: int = 0) -> Iterator[dict[str, Any]]:
        rows = self._rows("SELECT * FROM page_views WHERE ts >= ? ORDER BY ts, id", (since_ms,))
        return ({**dict(r), "type": PAGE_VIEW} for r in rows)

    @staticmethod
    def _identify(row: sqlite3.Row) -> dict[str, Any]:
        event = dict(row)
        event["type"] = IDENTIFY
        event["flags"] = json.loads(event["flags"])
        return event

    def joined(
        self, click_window_ms: int, conversion_window_ms: int, since_ms: int = 0
    ) -> Iterator[Joined]:
        """Exposures since ``since_ms`` with the clicks and conversions attributed to them.

        An outcome counts when it arrives within its window after the exposure (a minute of
        clock skew between edge locations is tolerated) and either names the exposure's decision
        for the same visitor, or names no decision (a visitor-level conversion: it credits every
        decision the visitor was shown within the window). One outcome credits one decision at
        most once, however many events carry it (``credit_sql``).
        """
        sql = f"""
        WITH {self.credit_sql(":since")},
        per AS (
          SELECT eid,
            SUM(type = 'click' AND dt <= :cw) AS n_clk,
            SUM(type = 'conversion' AND dt <= :vw) AS n_conv,
            TOTAL(CASE WHEN type = 'conversion' AND dt <= :vw THEN value END) AS total
          FROM credit GROUP BY eid
        )
        SELECT e.*, COALESCE(p.n_clk, 0) AS n_clk, COALESCE(p.n_conv, 0) AS n_conv,
          COALESCE(p.total, 0.0) AS total
        FROM exposures e LEFT JOIN per p ON p.eid = e.id
        WHERE e.ts >= :since
        ORDER BY e.ts, e.id
        """
        args = {"cw": click_window_ms, "vw": conversion_window_ms, "since": since_ms}
        for row in self._scan(sql, args):
            event = self._exposure(row)
            clicks, conversions, value = event.pop("n_clk"), event.pop("n_conv"), event.pop("total")
            yield Joined(event, int(clicks), int(conversions), float(value))

    @staticmethod
    def credit_sql(exposures: str) -> str:
        """A ``credit(eid, type, ref, dt, value, oid, named)`` CTE: every outcome credited to every
        exposure it counts for, once: exposures with ``e.ts >= :since`` (``exposures`` is
        ``":since"``) or the one ``e.id = :decision``. An outcome counts for an exposure of the
        same visitor when it names the exposure's decision or names none (visitor-level), from
        ``SKEW_MS`` before the exposure on. ``ref`` names the outcome itself (its id after the
        first ``:``, ``<kind>:<outcome id>``: see ``core.events``), so a conversion sent both for
        a decision and for the visitor counts once; ``dt`` is its earliest arrival after the
        exposure, ``oid`` one of its event ids, ``named`` 1 when an event of it names the
        decision (0: visitor-level only). Server-side purchases and subscriptions (net of
        refunds: ``SERVER_CREDITS``) are conversions crediting every exposure of their visitor
        or user (``_SERVER_MATCHES``), ref ``<type>:<id>``."""
        where = "e.id = :decision" if exposures == ":decision" else "e.ts >= :since"
        server = "".join(
            f"""
            UNION ALL
            SELECT e.id, 'conversion', s.type || ':' || s.id, s.ts - e.ts, s.net,
              s.type || ':' || s.id, 0
            FROM {SERVER_CREDITS} s JOIN exposures e ON {match}
            WHERE {where} AND s.ts >= e.ts - {SKEW_MS}"""
            for match in _SERVER_MATCHES
        )
        ref = "substr(o.id, instr(o.id, ':') + 1)"
        return f"""credit AS (
          SELECT eid, type, ref, MIN(dt) AS dt, MAX(value) AS value, MIN(oid) AS oid,
            MAX(named) AS named
          FROM (
            SELECT e.id AS eid, o.type AS type, {ref} AS ref, o.ts - e.ts AS dt,
              o.value AS value, o.id AS oid, 1 AS named
            FROM exposures e JOIN outcomes o ON o.decision = e.id AND o.visitor = e.visitor
            WHERE {where} AND o.ts >= e.ts - {SKEW_MS}
            UNION ALL
            SELECT e.id, o.type, {ref}, o.ts - e.ts, o.value, o.id, 0
            FROM exposures e JOIN outcomes o ON o.visitor = e.visitor AND o.decision = ''
            WHERE {where} AND o.ts >= e.ts - {SKEW_MS}
{server}
          ) GROUP BY eid, type, ref
        )"""

    def volume(self, since_ms: int, bucket_ms: int) -> dict[tuple[str, int], int]:
        """Event counts by (type, bucket start) for events at or after ``since_ms``."""
        out: dict[tuple[str, int], int] = {}
        queries = (
            ("SELECT 'exposure' AS type, ts FROM exposures WHERE ts >= ?", ()),
            ("SELECT type, ts FROM outcomes WHERE ts >= ?", ()),
            ("SELECT 'identify' AS type, ts FROM identifies WHERE ts >= ?", ()),
            ("SELECT 'page_view' AS type, ts FROM page_views WHERE ts >= ?", ()),
            ("SELECT 'vitals' AS type, ts FROM vitals WHERE ts >= ?", ()),
            ("SELECT type, ts FROM server_events WHERE ts >= ?", ()),
            ("SELECT 'signal' AS type, ts FROM signals WHERE ts >= ?", ()),
        )
        for sql, _ in queries:
            grouped = (
                f"SELECT type, (ts / {int(bucket_ms)}) * {int(bucket_ms)} AS b, COUNT(*) AS n "
                f"FROM ({sql}) GROUP BY type, b"
            )
            for row in self._rows(grouped, (since_ms,)):
                out[(row["type"], int(row["b"]))] = int(row["n"])
        return out

    def count(self, kind: str) -> int:
        """How many stored events of a type (``exposure``, ``click``, ``conversion``, ...)."""
        if kind == EXPOSURE:
            return int(self._rows("SELECT COUNT(*) FROM exposures")[0][0])
        if kind == IDENTIFY:
            return int(self._rows("SELECT COUNT(*) FROM identifies")[0][0])
        if kind == PAGE_VIEW:
            return int(self._rows("SELECT COUNT(*) FROM page_views")[0][0])
        if kind == VITALS:
            return int(self._rows("SELECT COUNT(*) FROM vitals")[0][0])
        if kind in SERVER_TYPES:
            rows = self._rows("SELECT COUNT(*) FROM server_events WHERE type = ?", (kind,))
            return int(rows[0][0])
        if kind == SIGNAL:
            return int(self._rows("SELECT COUNT(*) FROM signals")[0][0])
        return int(self._rows("SELECT COUNT(*) FROM outcomes WHERE type = ?", (kind,))[0][0])

    def user_events(self, user: str) -> EventSlice:
        """Every event a user's stitched profile depends on, read through indexes:

        - every exposure of each visitor ever linked to the user or named with the user on an
          exposure (a page view belongs to whoever owns the earliest exposure of its request);
        - the outcomes of the linked visitors or of the user's decisions, and the exposures
          those outcomes name (their owner decides who converted);
        - every identify of the visitors involved (a later one may link a visitor elsewhere).

        Visitor lists travel as one JSON parameter (``json_each``), whatever their length.
        """
        linked = [r[0] for r in self._rows(_LINKED, (user,))]
        named = [r[0] for r in self._rows(_NAMED, (user,))]
        ours, owned = json.dumps(sorted({*linked, *named})), json.dumps(linked)
        exposures = self._rows(
            f"SELECT * FROM exposures WHERE visitor IN {_EACH} OR id IN "
            f"(SELECT decision FROM outcomes WHERE visitor IN {_EACH}) ORDER BY ts, id",
            (ours, owned),
        )
        outcomes = self._rows(
            "SELECT * FROM outcomes WHERE decision IN (SELECT id FROM exposures WHERE user = ? "
            f"OR visitor IN {_EACH}) OR visitor IN {_EACH} ORDER BY ts, id",
            (user, owned, owned),
        )
        involved = json.dumps(sorted({*linked, *named, *(r["visitor"] for r in exposures)}))
        identifies = self._rows(
            f"SELECT * FROM identifies WHERE visitor IN {_EACH} ORDER BY ts, id", (involved,)
        )
        views = self._rows(
            f"SELECT * FROM page_views WHERE visitor IN {_EACH} OR user = ? ORDER BY ts, id",
            (involved, user),
        )
        signals = self._rows(
            f"SELECT * FROM signals WHERE visitor IN {_EACH} ORDER BY ts, id", (involved,)
        )
        server = self._rows(
            f"SELECT * FROM server_events WHERE visitor IN {_EACH} OR user = ? ORDER BY ts, id",
            (involved, user),
        )
        return EventSlice(
            tuple(self._exposure(r) for r in exposures),
            tuple(dict(r) for r in outcomes),
            tuple(self._identify(r) for r in identifies),
            tuple({**dict(r), "type": PAGE_VIEW} for r in views),
            tuple({**dict(r), "type": SIGNAL} for r in signals),
            tuple(dict(r) for r in server),
        )

    def user_of(self, visitor: str) -> str:
        """The user a visitor's latest identify names ("" for an anonymous visitor)."""
        rows = self._rows(
            "SELECT user FROM identifies WHERE visitor = ? ORDER BY ts DESC, id DESC LIMIT 1",
            (visitor,),
        )
        return str(rows[0][0]) if rows else ""

    def server_events(self, since_ms: int = 0) -> Iterator[dict[str, Any]]:
        """Server-side events (purchases, logins, subscriptions, refunds), oldest first."""
        rows = self._rows("SELECT * FROM server_events WHERE ts >= ? ORDER BY ts, id", (since_ms,))
        return (dict(r) for r in rows)

    def signals(self, since_ms: int = 0) -> Iterator[dict[str, Any]]:
        """Browser signals (``core.events`` ``signal``), oldest first."""
        rows = self._rows("SELECT * FROM signals WHERE ts >= ? ORDER BY ts, id", (since_ms,))
        return ({**dict(r), "type": SIGNAL} for r in rows)

    # ---- lookups for `edgepick inspect` (origin/inspect.py): one decision, one visitor ----

    def decision(self, decision_id: str) -> dict[str, Any] | None:
        """The exposure logged for one decision id (``None`` when the store has none)."""
        rows = self._rows("SELECT * FROM exposures WHERE id = ?", (decision_id,))
        return self._exposure(rows[0]) if rows else None

    def decision_outcomes(
        self, decision_id: str, window_ms: int = VISITOR_WINDOW_MS
    ) -> list[dict[str, Any]]:
        """The clicks and conversions credited to one decision, oldest first, each outcome
        once: those naming it (from its visitor), and its visitor's visitor-level conversions
        within ``window_ms`` after it (the learner's default conversion window)."""
        sql = f"""
        WITH {self.credit_sql(":decision")}
        SELECT o.* FROM credit c JOIN outcomes o ON o.id = c.oid
        WHERE c.named OR c.dt <= :window
        ORDER BY o.ts, o.id
        """
        rows = self._rows(sql, {"decision": decision_id, "window": window_ms})
        return [dict(r) for r in rows]

    def visitor_events(self, visitor: str) -> EventSlice:
        """One visitor's own exposures, outcomes, identifies and page views, oldest first."""
        return EventSlice(
            tuple(
                self._exposure(r)
                for r in self._rows(
                    "SELECT * FROM exposures WHERE visitor = ? ORDER BY ts, id", (visitor,)
                )
            ),
            tuple(
                dict(r)
                for r in self._rows(
                    "SELECT * FROM outcomes WHERE visitor = ? ORDER BY ts, id", (visitor,)
                )
            ),
            tuple(
                self._identify(r)
                for r in self._rows(
                    "SELECT * FROM identifies WHERE visitor = ? ORDER BY ts, id", (visitor,)
                )
            ),
            tuple(
                dict(r)
                for r in self._rows(
                    "SELECT * FROM page_views WHERE visitor = ? ORDER BY ts, id", (visitor,)
                )
            ),
        )

    # ---- end of the inspect lookups ----

    # ---- real-user vitals (origin.monitor keeps their p75 per slot, arm and holdout) ----

    def vitals(self, since_ms: int = 0, until_ms: int | None = None) -> Iterator[dict[str, Any]]:
        """Vitals events in ``[since_ms, until_ms)``, oldest first (metrics not measured absent)."""
        until = until_ms if until_ms is not None else 2**62
        rows = self._rows(
            "SELECT * FROM vitals WHERE ts >= ? AND ts < ? ORDER BY ts, id", (since_ms, until)
        )
        for row in rows:
            event = {k: v for k, v in dict(row).items() if v is not None}
            event["type"] = VITALS
            event["decisions"] = json.loads(row["decisions"])
            yield event

    def vitals_by_decision(
        self, since_ms: int = 0, until_ms: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Each page's vitals once per decision it showed, with that decision's exposure:
        ``{page, slot, variant, reason, <metrics measured>}``. The exposure must be the same
        visitor's; decisions the store has no exposure for are left out."""
        until = until_ms if until_ms is not None else 2**62
        metrics = ", ".join(f"v.{m}" for m in VITAL_COLUMNS)
        rows = self._rows(
            f"SELECT v.id AS page, e.slot, e.variant, e.reason, {metrics} "
            "FROM vitals v, json_each(v.decisions) d "
            "JOIN exposures e ON e.id = d.value AND e.visitor = v.visitor "
            "WHERE v.ts >= ? AND v.ts < ? ORDER BY v.ts, v.id, e.slot",
            (since_ms, until),
        )
        for row in rows:
            yield {k: v for k, v in dict(row).items() if v is not None}

    def ids(self) -> set[str]:
        """Every stored event id (for tests and audits)."""
        rows = self._rows(
            "SELECT id FROM exposures UNION ALL SELECT id FROM outcomes "
            "UNION ALL SELECT id FROM identifies UNION ALL SELECT id FROM vitals "
            "UNION ALL SELECT id FROM page_views UNION ALL SELECT id FROM server_events "
            "UNION ALL SELECT id FROM signals"
        )
        return {r[0] for r in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
