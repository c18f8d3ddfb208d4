"""Generated traffic with real decisions, for the lake's tests and bench/scale.py.

``events`` decides every slot of a page with ``core.decide`` on a compiled snapshot for
visitors of both devices (mobile visitors fall into the headline slot's ``mobile`` segment),
over several UTC days, with what makes attribution and the visitor cap non-trivial: clicks
naming their decision (some after the 30-minute click window), conversions naming one or none
(visitor-level), repeat outcomes of one id, and a few heavy visitors with more than the cap's
20 policy draws per slot and day. Seeded: the same arguments give the same events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from core.decide import decide
from core.engine import Engine
from core.events import exposure, identify_event, page_view
from core.features import RequestContext, VisitorState

SLOTS = ("hero", "headline", "recs", "promo", "cta", "landing")
HOUR_MS = 3_600_000


def events(
    engine: Engine,
    visitors: int,
    start_ms: int,
    seed: int = 0,
    days: int = 2,
    heavy: int = 2,
) -> Iterator[dict[str, Any]]:
    """Events of ``visitors`` visitors (plus ``heavy`` with 30 pages each) over ``days`` days."""
    rng = np.random.default_rng(seed)
    span = days * 24 * HOUR_MS
    for n in range(visitors + heavy):
        visitor = f"v{seed}-{n}"
        pages = 30 if n >= visitors else int(rng.integers(1, 4))
        ts = start_ms + int(rng.integers(0, span))
        mobile = n % 3 == 0
        if n % 11 == 0:
            yield identify_event(visitor, f"u{seed}-{n // 11}", ts)
        for page in range(pages):
            ts += int(rng.integers(1_000, 120_000))
            yield from _page(engine, rng, visitor, ts, page, mobile, n)


def _page(
    engine: Engine,
    rng: np.random.Generator,
    visitor: str,
    ts: int,
    page: int,
    mobile: bool,
    n: int,
) -> Iterator[dict[str, Any]]:
    path = ("/", "/running/shoes", "/hiking/boots", "/yoga/mats")[int(rng.integers(0, 4))]
    context = RequestContext(path=path, device="mobile" if mobile else "desktop", country="DE")
    state = VisitorState(visitor, visits=1 + page // 3, page_views=page, last_seen=ts // 1000 - 60)
    yield page_view(f"{visitor}:pv:{page}", visitor, ts, path, path.split("/")[1])
    for d in decide(engine, state, context, ts // 1000, list(SLOTS)):
        event = exposure(d, visitor, engine.snapshot_id, ts, 100, context)
        event["id"] = f"{visitor}-{page}-{d.decision_id.rsplit('-', 1)[1]}"
        yield event
        draw = rng.random()
        if draw < 0.12:  # a click, now or (rarely) after its window
            late = 40 * 60_000 if draw < 0.01 else int(rng.integers(500, 600_000))
            click = {"type": "click", "ts": ts + late, "visitor": visitor}
            click.update(id=f"{event['id']}:click:c{page}", decision=event["id"], value=0.0)
            yield click
        if draw < 0.03:
            conversion = {"type": "conversion", "ts": ts + int(rng.integers(1_000, 30 * HOUR_MS))}
            named = event["id"] if draw < 0.02 else ""
            owner = event["id"] if named else visitor
            conversion.update(
                id=f"{owner}:conversion:o{page}",
                visitor=visitor,
                decision=named,
                value=float(rng.integers(10, 200)),
            )
            yield conversion
            if draw < 0.005:  # the same outcome sent again, for the visitor
                yield {**conversion, "id": f"{visitor}:conversion:o{page}", "decision": ""}
