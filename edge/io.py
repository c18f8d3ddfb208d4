"""What the request logic needs from the runtime, as a protocol; and the shapes it exchanges.

``edge.interop`` implements it on Cloudflare's runtime (JS objects); tests implement it in
memory. Keeping every runtime call behind this protocol is what lets one request logic serve
under CPython, under Pyodide and in workerd.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Coroutine, Mapping, Sequence
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


class Completion:
    """The end of a page's document, told to whoever waits for it: ``then(callback)`` runs
    ``callback(complete)`` once the runtime calls ``finish(complete)`` (at once if it already
    has); only the first ``finish`` counts.

    Plain callbacks rather than a future: the worker ships a streamed page's events from the
    rewriter's own end-of-document call, where awaiting a future would cost event-loop turns
    and a task (each turn about 15 us under Pyodide, ``bench/edge_vs_js.py``). A callback that
    raises is logged and the others still run: the page is on its way whatever they do."""

    __slots__ = ("callbacks", "result")

    def __init__(self, result: bool | None = None) -> None:
        self.result = result  # None until finished
        self.callbacks: list[Callable[[bool], None]] = []

    @property
    def finished(self) -> bool:
        return self.result is not None

    def then(self, callback: Callable[[bool], None]) -> None:
        if self.result is None:
            self.callbacks.append(callback)
        else:
            _run(callback, self.result)

    def finish(self, complete: bool) -> bool:
        """Run the callbacks with ``complete``; False (nothing run) when already finished."""
        if self.result is not None:
            return False
        self.result = complete
        callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            _run(callback, complete)
        return True


def _run(callback: Callable[[bool], None], complete: bool) -> None:
    try:
        callback(complete)
    except Exception:  # logged: a page's events are not worth breaking its stream for
        traceback.print_exc()


@dataclass(slots=True)
class Rewritten:
    """A rewritten page. Streamed, its body flows to the visitor as the origin sends it and
    ``found`` fills as the rewriter meets the slots: complete once ``done`` finishes True (at
    the end of the document); the runtime finishes it False when no end came within
    ``STREAM_WAIT_S`` (a visitor gone mid-page, a stalled origin), and keeps the request alive
    until then for what waits on it. Buffered, ``done`` has already finished."""

    page: Page
    found: set[str]
    done: Completion


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
        through ``ctx.waitUntil`` with bounded retries (``edge.delivery``), or to a queue.
        Callable from a ``Completion`` callback (after the response, the request still held)."""
        ...

    def now_ms(self) -> int: ...

    def cpu_us(self) -> float: ...

    def token(self) -> str:
        """32 hex digits of fresh randomness."""
        ...
