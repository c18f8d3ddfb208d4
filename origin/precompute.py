"""The off-peak job: decisions pre-computed for the most frequent visitor contexts, published
under their own KV key ``precomputed/<snapshot id>`` (``core.precomputed``; the snapshot's own
format is untouched).

Contexts come from traffic like the demo's (``origin.population``: visitors with an interest,
a device and an arrival channel browse their pages, then the home page), as the edge sees each
page request: the cookie state after the page view and the request context. The job counts
their context keys, keeps the ``size`` most frequent and computes each one's entry with
``core.decide`` itself; ``hit_rate`` replays other traffic against the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from core.engine import Engine
from core.features import RequestContext, VisitorState, record_page_view
from core.model import Placement
from core.precomputed import Table, build_table, decide_cached, encode_table, serving
from origin.population import SimVisitor, population

KEY_PREFIX = "precomputed/"


def table_key(snapshot_id: str) -> str:
    return KEY_PREFIX + snapshot_id


def inline_slots(engine: Engine) -> list[str]:
    """The slots the edge decides on a page request (async ones go through the decide API)."""
    return [n for n, s in engine.slots.items() if s.slot.placement is Placement.INLINE]


def demo_requests(
    engine: Engine, visitors: Iterable[SimVisitor], now: int
) -> Iterator[tuple[VisitorState, RequestContext, int]]:
    """Each page request of the demo's visitors (their pages, then ``/``), one visitor a second
    from ``now``: the state after the view (as the cookie has it) and the request's context."""
    for k, visitor in enumerate(visitors):
        t = now + k
        state = VisitorState(visitor.visitor_id)
        for n, page in enumerate([*visitor.browsing(), "/"]):
            state = record_page_view(state, t, page, engine.site.signals)
            context = RequestContext(
                path=page,
                device=visitor.device,
                country="US",
                referrer="direct" if n == 0 else "internal",
                utm_source=visitor.utm_source,
                hour=(t // 3600) % 24,
                weekday=(t // 86400 + 3) % 7,  # 1970-01-01 was a Thursday
            )
            yield state, context, t


@dataclass(frozen=True, slots=True)
class Precomputed:
    table: Table
    blob: bytes
    contexts: int  # requests the table was built from
    distinct: int  # distinct context keys among them


def precompute(
    engine: Engine, visitors: int, seed: int, now: int, size: int = 500, mode: str = "always"
) -> Precomputed:
    """The table for the ``size`` most frequent contexts of ``visitors`` demo visitors, to be
    served in ``mode`` (``core.precomputed.MODES``)."""
    requests = list(demo_requests(engine, population(visitors, seed, prefix="pre"), now))
    table, counts = build_table(engine, requests, inline_slots(engine), size)
    return Precomputed(
        table, encode_table(engine.snapshot_id, table, mode), len(requests), len(counts)
    )


def hit_rate(
    engine: Engine, table: Table, requests: Sequence[tuple[VisitorState, RequestContext, int]]
) -> float:
    """The share of ``requests`` the table serves (the holdout and bots are always live)."""
    slots, served = inline_slots(engine), serving(engine, table)
    hits = sum(decide_cached(engine, served, s, c, t, slots) is not None for s, c, t in requests)
    return hits / len(requests) if requests else 0.0
