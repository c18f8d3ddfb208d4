"""Running the origin service under uvicorn with the limits a public endpoint needs.

uvicorn closes idle keep-alive connections but gives a new connection unlimited time to send
its request, so a few hundred clients trickling header bytes (slowloris) hold every slot and
lock out the edge's signed batches. ``GuardedH11`` gives each request ``request_timeout``
seconds from its first byte (or from the connection, for the first) until the request is
complete, then closes the connection; ``serve`` also caps concurrent connections (excess ones
get a 503 at once) and the size of an incomplete request. Refused connections are logged as one
line per kind and a count, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("edgepick.server")
REQUEST_TIMEOUT = 10.0  # seconds a client has to send one whole request (headers and body)
MAX_CONNECTIONS = 256  # concurrent connections and requests before new ones get a 503
MAX_INCOMPLETE = 64 * 1024  # bytes of an incomplete request line and headers
refused: Counter[str] = Counter()  # refusals by kind, since start (shown by GET /health)


class GuardedH11(H11Protocol):
    """H11Protocol with a deadline on receiving each request."""

    request_timeout = REQUEST_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._too_slow)

    def _disarm(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._deadline = None

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        if getattr(self, "_deadline", None) is None and (cycle is None or cycle.response_complete):
            self._arm()  # a new request on a kept-alive connection
        super().data_received(data)
        cycle = self.cycle
        if cycle is not None and not cycle.more_body:
            self._disarm()  # the whole request is in: the app's time is its own

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _too_slow(self) -> None:
        self._deadline = None
        note("request not received in time")
        self.transport.close()


def note(kind: str) -> None:
    """Count a refused connection; log the first of each kind and then every 100th."""
    refused[kind] += 1
    if refused[kind] == 1 or refused[kind] % 100 == 0:
        log.warning("edgepick serve: refused %d connection(s): %s", refused[kind], kind)


def serve(app: Any, host: str, port: int, log_level: str = "info") -> None:
    """``uvicorn.run`` with the guarded protocol and the limits above."""
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=GuardedH11,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=MAX_INCOMPLETE,
    )
