"""Events through NATS JetStream: collectors publish, consumers write the hot buffer.

**Publishing** (``JetStreamSink``, what ``edgepick lake serve`` gives the collector in place of
the store): each batch the collector validated is one message on ``SUBJECT`` in the stream
``STREAM`` (file storage), with the header ``Nats-Msg-Id`` = SHA-256 of the batch's event ids.
``append`` returns once JetStream acknowledged the message, i.e. stored it (on disk; with
``sync_interval: always`` in the server's config, fsynced), so the collector's ``200`` still
means durable. A batch resent within the stream's duplicate window (2 minutes) is recognized by
JetStream and counted as duplicates; later resends are caught by the store (ids are keys).

**Consuming** (``consume``, ``edgepick lake consume``): a durable pull consumer (``DURABLE``,
explicit acks, ``ack_wait`` seconds before redelivery) fetches messages, appends their events to
the SQLite store (one committed, fsynced transaction per fetch) and only then acks them. A
consumer killed between the two gets the messages again, and the store ignores what it already
has: nothing acknowledged is lost, nothing is stored twice. Several consumers may share the
durable (each message goes to one); several collectors may publish.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from core.events import problem
from origin.store import Appended, EventStore

log = logging.getLogger("edgepick.stream")
STREAM = "EDGEPICK_EVENTS"
SUBJECT = "edgepick.events"
DURABLE = "edgepick-store"
DUPLICATE_WINDOW = 120.0  # seconds JetStream remembers message ids
ACK_WAIT = 30.0  # seconds before an unacknowledged message is delivered again
PUBLISH_TIMEOUT = 2.0  # seconds a collector waits for JetStream's ack before answering 503
RECONNECT_WAIT = 2.0  # seconds between attempts to reach the NATS server


def describe(exc: BaseException) -> str:
    """``Type: message`` (some exceptions, e.g. ``TimeoutError``, have an empty message)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def connect_options(url: str, who: str) -> dict[str, Any]:
    """``nats.connect`` options: retry forever every ``RECONNECT_WAIT`` s, and report each
    failed attempt or disconnection as one line on stderr (not nats-py's traceback)."""

    async def error(exc: Exception) -> None:
        print(
            f"edgepick {who}: NATS at {url}: {describe(exc)}; retrying in {RECONNECT_WAIT:g} s",
            file=sys.stderr,
            flush=True,
        )

    async def disconnected() -> None:
        print(f"edgepick {who}: disconnected from NATS at {url}", file=sys.stderr, flush=True)

    async def reconnected() -> None:
        print(f"edgepick {who}: connected to NATS at {url} again", file=sys.stderr, flush=True)

    return {
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": RECONNECT_WAIT,
        "error_cb": error,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
    }


def message_id(events: Sequence[Mapping[str, Any]]) -> str:
    """The batch's ``Nats-Msg-Id``: SHA-256 of its event ids (in order, newline-separated)."""
    return sha256("\n".join(str(e.get("id", "")) for e in events).encode()).hexdigest()


async def ensure_stream(js: Any, replicas: int = 1) -> None:
    """Create the stream (file storage) unless it exists."""
    from nats.js.api import StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(STREAM)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=STREAM,
                subjects=[SUBJECT],
                storage=StorageType.FILE,
                duplicate_window=DUPLICATE_WINDOW,
                num_replicas=replicas,
            )
        )


class JetStreamSink:
    """``append`` as a JetStream publish (see the module docstring); thread-safe, synchronous
    (it runs its own event loop on a thread, as the collector calls it from a thread pool).

    While the NATS server is unreachable, or when its ack takes longer than
    ``publish_timeout`` seconds, ``append`` refuses the batch with a 503
    (``origin.collector.Refused``): the edge sends it again later. The constructor waits for
    the first connection (retrying every ``RECONNECT_WAIT`` s, one line on stderr each time).
    """

    def __init__(
        self, url: str, timeout: float = 10.0, publish_timeout: float = PUBLISH_TIMEOUT
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.publish_timeout = publish_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._nc: Any = None
        self._js: Any = None
        self._call(self._connect())

    def _call(self, coro: Any, timeout: float | None = None) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    async def _connect(self) -> None:
        import nats

        options = connect_options(self.url, "collector")
        self._nc = await nats.connect(self.url, connect_timeout=self.timeout, **options)
        self._js = self._nc.jetstream(timeout=self.timeout)
        await ensure_stream(self._js)

    async def _publish(self, events: Sequence[Mapping[str, Any]]) -> Appended:
        if not self._nc.is_connected:
            raise ConnectionError("not connected (reconnecting)")
        body = json.dumps({"events": list(events)}, separators=(",", ":")).encode()
        headers = {"Nats-Msg-Id": message_id(events)}
        ack = await self._js.publish(SUBJECT, body, timeout=self.publish_timeout, headers=headers)
        return Appended(0, len(events)) if ack.duplicate else Appended(len(events), 0)

    def append(self, events: Sequence[Mapping[str, Any]]) -> Appended:
        """Publish one batch; returns once JetStream has stored it, raises
        ``origin.collector.Refused`` (503) when it could not (see the class docstring)."""
        from origin.collector import Refused

        if not events:
            return Appended(0, 0)
        try:
            result: Appended = self._call(self._publish(events), self.publish_timeout + 1.0)
        except Exception as exc:  # timeouts, connection errors, JetStream's API errors
            raise Refused(
                503,
                f"the event stream is unavailable (JetStream at {self.url}: "
                f"{describe(exc)}); send the batch again later",
            ) from None
        return result

    def problem(self) -> str | None:
        """Why appends are refused right now (``GET /health`` answers 503 with it), or None."""
        if self._nc is None or not self._nc.is_connected:
            return f"the event stream is unavailable (JetStream at {self.url}: not connected)"
        return None

    def close(self) -> None:
        if self._nc is not None:
            try:
                self._call(self._nc.drain() if self._nc.is_connected else self._nc.close(), 10.0)
            except Exception as exc:  # closing: nothing left to answer
                log.warning("edgepick: closing the NATS connection: %s", describe(exc))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@dataclass
class Consumed:
    messages: int = 0
    events: int = 0
    stored: int = 0  # new to the store (the rest were redeliveries or resends)
    refused: int = 0  # events that failed core.events.problem (logged, acked, not stored)


async def consume(
    url: str,
    store: EventStore,
    batch: int = 64,
    stop: Callable[[Consumed], bool] = lambda c: False,
    idle: float = 1.0,
    ack_wait: float = ACK_WAIT,
) -> Consumed:
    """Move messages from the stream to ``store`` until ``stop(counts)`` (checked after each
    fetch, including empty ones every ``idle`` seconds) says so."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    nc = await nats.connect(url, **connect_options(url, "consume"))
    counts = Consumed()
    try:
        js = nc.jetstream()
        await ensure_stream(js)
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait)
        sub = await js.pull_subscribe(SUBJECT, durable=DURABLE, stream=STREAM, config=config)
        while not stop(counts):
            try:
                messages = await sub.fetch(batch, timeout=idle)
            except TimeoutError:  # nothing to fetch (nats-py raises its own subclass or
                continue  # asyncio's, depending on where in the fetch the time ran out)
            events: list[dict[str, Any]] = []
            for msg in messages:
                events.extend(_events(msg.data, counts))
            appended = await asyncio.to_thread(store.append, events) if events else None
            for msg in messages:
                await msg.ack()
            counts.messages += len(messages)
            counts.events += len(events)
            counts.stored += appended.accepted if appended else 0
    finally:
        await nc.close()
    return counts


def _events(data: bytes, counts: Consumed) -> list[dict[str, Any]]:
    """A message's valid events (the collector validated them; a stray publisher's are not)."""
    try:
        payload = json.loads(data)
        found = payload["events"] if isinstance(payload, dict) else None
    except (ValueError, KeyError):
        found = None
    if not isinstance(found, list):
        counts.refused += 1
        log.warning("edgepick consume: a message that is not an event batch, dropped")
        return []
    good = [e for e in found if problem(e) is None]
    if len(good) < len(found):
        counts.refused += len(found) - len(good)
        log.warning("edgepick consume: %d invalid events dropped", len(found) - len(good))
    return good


class StreamedStore:
    """A store whose writes go to JetStream and whose reads come from the hot buffer the
    consumers write (``edgepick serve --nats``): ``append`` publishes (``JetStreamSink``: the
    answer comes after JetStream's ack), everything else (``user_of``, ``user_events``... what
    ``/v1/decide`` reads for a visitor's profile) is the SQLite store's. A write is readable once
    a consumer (``edgepick lake consume``) has moved it into that store."""

    def __init__(self, store: EventStore, sink: JetStreamSink) -> None:
        self.store = store
        self.sink = sink

    def append(self, events: Sequence[Mapping[str, Any]]) -> Appended:
        return self.sink.append(events)

    def problem(self) -> str | None:
        return self.sink.problem()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def close(self) -> None:
        self.sink.close()
        close = getattr(self.store, "close", None)
        if callable(close):
            close()
