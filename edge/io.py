"""What the request logic needs from the runtime, as a protocol; and the shapes it exchanges.

``edge.interop`` implements it on Cloudflare's runtime (JS objects); tests implement it in
memory. Keeping every runtime call behind this protocol is what lets one request logic serve
under CPython, under Pyodide and in workerd.
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

STREAM_WAIT_S = 25.0  # a streamed page's end is waited for this long at most (waitUntil: 30 s)


class OriginTimeout(Exception):
    """The origin did not send its response headers in time."""


@dataclass(frozen=True, slots=True)
class Incoming:
    method: str
    url: str
    headers: Mapping[str, str]  # lower-case names
    country: str = ""  # request.cf.country where the runtime has it
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Page:
    """An origin response; ``handle`` is the runtime's own object, passed through untouched."""

    status: int
    headers: Mapping[str, str]
    handle: Any = None

    @property
    def is_html(self) -> bool:
        return self.status == 200 and "text/html" in self.headers.get("content-type", "")


@dataclass(slots=True)
class Outgoing:
    """The reply: either a page (passed through or rewritten) or a body of our own."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str | bytes | None = None
    page: Page | None = None
    untouched: bool = False  # the origin's response, byte for byte (fail open)


@dataclass(slots=True)
class Rewritten:
    """A rewritten page. Streamed, its body flows to the visitor as the origin sends it and
    ``found`` fills as the rewriter meets the slots: complete once ``done`` resolves True (at
    the end of the document); the runtime resolves it False when no end came within
    ``STREAM_WAIT_S`` (a visitor gone mid-page, a stalled origin). Buffered, ``done`` has
    already resolved."""

    page: Page
    found: set[str]
    done: Awaitable[bool]


class EdgeIO(Protocol):
    async def kv_get(self, key: str, binary: bool) -> bytes | str | None: ...

    async def fetch(self, url: str, headers: Mapping[str, str], timeout_ms: int) -> Page:
        """GET ``url`` from the origin with these request headers; raises ``OriginTimeout`` when
        the origin's response headers take longer than ``timeout_ms`` (the body may take as
        long as it takes: it streams)."""
        ...

    async def forward(self, url: str, timeout_ms: int, drop: Sequence[str] = ()) -> Page:
        """Send the visitor's own request (method, headers, body) to ``url``, without the
        request headers named in ``drop``; ``OriginTimeout`` as for ``fetch``."""
        ...

    async def rewrite(
        self,
        page: Page,
        fills: Mapping[str, tuple[str, str, str]],
        banner: str = "",
        appends: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Rewritten:
        """Fill each selector's element with (html, decision id, slot), marking it with the
        decision and dropping ``data-edgepick-async`` (it is filled now); append ``banner``
        (HTML) to ``<body>``; append each of ``appends`` (selector -> HTML) inside the elements
        the selector matches (``edge.client_js.page_marks``); report the slots found. Streamed
        (``stream``) or buffered (the slots found are known on return)."""
        ...

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` after the response, to its end (``ctx.waitUntil``)."""
        ...

    def ship(self, url: str, body: bytes, headers: Mapping[str, str], events: int) -> None:
        """Deliver a batch of ``events`` events in the background (after the response),
        through ``ctx.waitUntil`` with bounded retries (``edge.delivery``), or to a queue."""
        ...

    async def send(self, url: str, body: bytes, headers: Mapping[str, str], events: int) -> None:
        """``ship``'s delivery awaited, for work already running after the response (a streamed
        page's events): no background task of its own."""
        ...

    def now_ms(self) -> int: ...

    def cpu_us(self) -> float: ...

    def token(self) -> str:
        """32 hex digits of fresh randomness."""
        ...
