"""The edge's side of pre-computed decisions: the table under ``precomputed/<snapshot id>`` in
Workers KV (``core.precomputed``, published by ``edgepick precompute``), loaded per isolate and
per snapshot, and the choice between it and the live path for each request.

The table is read after a response (``io.later``), never on a visitor's time: the first
requests of a snapshot decide live, later ones find the table loaded. It is read once per
snapshot and isolate (a snapshot's table changes with the snapshot: publish the snapshot, then
run the job); while it is missing or unreadable it is looked for again every ``RETRY_MS``, and
decisions are live (fail open). Its mode says when it serves: ``always`` (every
request whose context it holds), ``budget:<us>`` (only once the request has used that much CPU
before deciding: under workerd, whose clocks stand still during CPU work, such a budget never
trips, so use ``always`` there) or ``off``. A context the table does not hold is decided live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from core.decide import Decision, decide
from core.engine import Engine
from core.features import RequestContext, VisitorState
from core.precomputed import Served, decide_cached, decode_table, serving
from edge.io import EdgeIO

KEY_PREFIX = "precomputed/"
RETRY_MS = 600_000  # a missing table is looked for again after this long


@dataclass
class Loaded:
    served: Served | None = None
    mode: str = "off"
    checked_ms: int = -RETRY_MS
    loading: bool = False


@dataclass
class Tables:
    """Per isolate: the table of each snapshot seen, and what became of requests."""

    by_snapshot: dict[str, Loaded] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    errors: int = 0

    async def load(self, io: EdgeIO, engine: Engine, loaded: Loaded) -> None:
        try:
            blob = await io.kv_get(KEY_PREFIX + engine.snapshot_id, True)
            found = decode_table(blob, engine.snapshot_id) if isinstance(blob, bytes) else None
            loaded.served, loaded.mode = (None, "off") if found is None else (
                serving(engine, found[0]), found[1]
            )  # fmt: skip
        except Exception:  # a table that does not fit the engine: live decisions
            self.errors += 1
            loaded.served, loaded.mode = None, "off"
        finally:
            loaded.loading = False

    def current(self, io: EdgeIO, engine: Engine) -> Loaded:
        """The snapshot's table as loaded so far; schedules a load when due (never once one is
        loaded: each extra read is one more ``waitUntil`` of some request)."""
        loaded = self.by_snapshot.get(engine.snapshot_id)
        if loaded is None:
            if len(self.by_snapshot) >= 4:  # old snapshots' tables go
                self.by_snapshot.clear()
            loaded = self.by_snapshot[engine.snapshot_id] = Loaded()
        now = io.now_ms()
        due = loaded.served is None and now - loaded.checked_ms >= RETRY_MS
        if due and not loaded.loading:
            loaded.loading, loaded.checked_ms = True, now
            io.later(self.load(io, engine, loaded))
        return loaded


TABLES = Tables()


def serves(mode: str, used_us: float) -> bool:
    """Whether a table in ``mode`` serves a request that has used ``used_us`` of CPU so far."""
    if mode == "always":
        return True
    budget = mode.removeprefix("budget:")
    return budget != mode and budget.isdigit() and used_us > int(budget)


def decide_fresh(
    engine: Engine,
    io: EdgeIO,
    state: VisitorState,
    context: RequestContext,
    now: int,
    slots: Sequence[str],
    nonce: str,
    overrides: Mapping[str, str] | None,
    started_us: float,
    tables: Tables = TABLES,
) -> list[Decision]:
    """The request's fresh decisions: from the table when it serves this request, else live
    (``core.decide.decide``, exactly the same decisions either way)."""
    if slots and not overrides:
        loaded = tables.current(io, engine)
        if loaded.served is not None and serves(loaded.mode, io.cpu_us() - started_us):
            found = decide_cached(engine, loaded.served, state, context, now, slots, nonce)
            if found is not None:
                tables.hits += 1
                return found
            tables.misses += 1
    return decide(engine, state, context, now, slots, nonce=nonce, overrides=overrides)
