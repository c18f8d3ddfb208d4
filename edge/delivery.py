"""Event delivery from the edge: bounded retries with exponential backoff, and what it counted.

The HTTP path runs inside ``ctx.waitUntil`` after the response: try ``TRIES`` times, waiting
``BASE_DELAY_S * 2^k`` seconds after the k-th failure (0.5 s, then 1 s: about 1.5 s of outage is
bridged). Batches carry event ids the collector deduplicates on, so resending after a lost reply
is safe: delivery is **at-least-once while the outage is shorter than the retry window**; longer,
the batch is dropped and counted (``GET /_edgepick/health``). A Queues producer bound as
``EVENTS`` is the durable path: the queue keeps the batch until a consumer
(``edge.queue_consumer``) has it acknowledged by the collector.

A collector answer of 2xx acknowledges the batch; 400/401/413 refuse it for good (resending the
same bytes cannot help: counted as dropped at once); anything else, or no answer, is retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core import events
from edge.config import EdgeConfig
from edge.io import EdgeIO

TRIES = 3
BASE_DELAY_S = 0.5
PERMANENT = frozenset({400, 401, 403, 404, 413, 422})


@dataclass
class DeliveryStats:
    """Events (not batches) by what became of them, per isolate."""

    shipped: int = 0  # acknowledged by the collector
    retried: int = 0  # sent again after a failed try (once per retry)
    dropped: int = 0  # given up: refused for good, or every try failed
    invalid: int = 0  # never sent: ``core.events.problem`` named a fault (an edge bug)
    queued: int = 0  # handed to a Queues producer
    pending: int = 0  # in flight right now
    last_error: str = ""

    def as_dict(self) -> dict[str, int | str]:
        return {
            "shipped": self.shipped,
            "retried": self.retried,
            "dropped": self.dropped,
            "invalid": self.invalid,
            "queued": self.queued,
            "pending": self.pending,
            "last_error": self.last_error,
        }


async def deliver(
    post: Callable[[], Awaitable[int]],
    events: int,
    stats: DeliveryStats,
    sleep: Callable[[float], Awaitable[None]],
    tries: int = TRIES,
    base_delay_s: float = BASE_DELAY_S,
) -> bool:
    """POST one batch of ``events`` events until acknowledged or given up; never raises.

    ``post`` sends the batch and returns the HTTP status (it may raise on a network error).
    Waits ``base_delay_s * 2^k`` after the k-th failed try (k = 0, 1, ...).
    """
    stats.pending += events
    try:
        for attempt in range(tries):
            if attempt:
                stats.retried += events
                await sleep(base_delay_s * 2 ** (attempt - 1))
            try:
                status = await post()
            except Exception as exc:  # no answer: retry
                stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
                continue
            if 200 <= status < 300:
                stats.shipped += events
                return True
            stats.last_error = f"collector answered {status}"
            if status in PERMANENT:
                break
        stats.dropped += events  # refused for good, every try failed, or no try at all
        return False
    finally:
        stats.pending -= events


Signed = tuple[bytes, dict[str, str], int]  # a batch's body, its headers, its event count


def signed(
    config: EdgeConfig,
    stats: DeliveryStats,
    batch: Sequence[Mapping[str, Any]],
    built: bool = False,
) -> Signed | None:
    """One batch signed for the collector (None: nothing to send, or nowhere to). Events
    ``core.events.problem`` faults are left out (and counted). ``built``: every event comes from
    ``core.events``' constructors, which only make valid events (tests/core/test_events.py, and
    every event the edge's tests ship is checked): not checked again on the request path."""
    valid = list(batch) if built else [e for e in batch if events.problem(e) is None]
    if len(valid) < len(batch):
        stats.invalid += len(batch) - len(valid)
        bad = next(e for e in batch if events.problem(e) is not None)
        stats.last_error = f"invalid event {bad.get('id')!r}: {events.problem(bad)}"[:300]
    if not valid or not config.collector_url:
        return None
    body = events.encode_batch(valid)
    signature = events.sign(body, config.events_secret)
    headers = {"content-type": "application/json", events.SIGNATURE_HEADER: signature}
    return body, headers, len(valid)


def ship(
    io: EdgeIO,
    config: EdgeConfig,
    stats: DeliveryStats,
    batch: Sequence[Mapping[str, Any]],
    built: bool = False,
) -> None:
    """Sign and hand one batch to the runtime for delivery after the response."""
    found = signed(config, stats, batch, built)
    if found is not None:
        io.ship(config.collector_url, *found)
