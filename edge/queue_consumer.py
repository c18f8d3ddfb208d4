"""The Queues consumer: event batches the edge queued (a producer bound as ``EVENTS``) -> the
collector, each message acknowledged only once the collector has stored it.

This is the durable delivery path. A message is a batch body as the producer sent it
(``core.events.encode_batch`` JSON, unsigned: it never left Cloudflare). For each message:

- events ``core.events.problem`` faults are left out (counted ``invalid``): one bad event must not
  cost the batch;
- the rest is signed with ``EVENTS_SECRET`` and POSTed to ``COLLECTOR_URL``;
- 2xx -> ``ack()`` (stored: the collector commits before it answers);
  a permanent refusal (400/401/413...) -> ``ack()`` and counted ``dropped`` (resending the same
  bytes cannot help; the worker log says why);
  anything else, or no answer -> ``retry()``: Queues redelivers later with its own backoff, up
  to the consumer's ``max_retries``, then to a dead-letter queue if one is configured.

Redelivery is safe: event ids make the collector's writes idempotent. ``consume`` takes the
runtime's calls as arguments, so the same code runs in the worker (``edge.interop.on_queue``)
and under CPython in the tests, against the real collector.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from core import events
from edge.delivery import PERMANENT, DeliveryStats

Post = Callable[[bytes, Mapping[str, str]], Awaitable[int]]


class Message(Protocol):
    """One queued message, as the Queues runtime hands it to a consumer."""

    @property
    def body(self) -> Any: ...

    def ack(self) -> None: ...

    def retry(self) -> None: ...


def batch_events(body: Any) -> list[dict[str, Any]]:
    """The events of a queued batch body (``[]`` for anything that is not one)."""
    raw = body if isinstance(body, bytes) else str(body).encode()
    try:
        payload = events.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return []
    items = payload.get("events") if isinstance(payload, dict) else None
    return [e for e in items if isinstance(e, dict)] if isinstance(items, list) else []


async def consume(
    messages: Iterable[Message], post: Post, secret: bytes, stats: DeliveryStats
) -> None:
    """Deliver every message of one queue batch (see the module docstring); never raises."""
    for message in messages:
        found = batch_events(message.body)
        valid = [e for e in found if events.problem(e) is None]
        stats.invalid += len(found) - len(valid)
        if not valid:
            message.ack()  # nothing deliverable in it, now or later
            continue
        body = events.encode_batch(valid)
        headers = {
            "content-type": "application/json",
            events.SIGNATURE_HEADER: events.sign(body, secret),
        }
        try:
            status = await post(body, headers)
        except Exception as exc:
            stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
            stats.retried += len(valid)
            message.retry()
            continue
        if 200 <= status < 300:
            stats.shipped += len(valid)
            message.ack()
        elif status in PERMANENT:
            stats.dropped += len(valid)
            stats.last_error = f"collector refused a queued batch: {status}"
            print(f"edgepick: {stats.last_error} ({len(valid)} events)")
            message.ack()
        else:
            stats.retried += len(valid)
            stats.last_error = f"collector answered {status}"
            message.retry()
