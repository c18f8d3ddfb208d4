"""What the request logic needs from the runtime, as a protocol; and the shapes it exchanges.

``edge.interop`` implements it on Cloudflare's runtime (JS objects); tests implement it in
memory. Keeping every runtime call behind this protocol is what lets one request logic serve
under CPython, under Pyodide and in workerd.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


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


class EdgeIO(Protocol):
    async def kv_get(self, key: str, binary: bool) -> bytes | str | None: ...

    async def fetch(self, url: str, headers: Mapping[str, str]) -> Page:
        """GET ``url`` from the origin with these request headers."""
        ...

    async def forward(self, url: str) -> Page:
        """Send the visitor's own request (method, headers, body) to ``url`` unchanged."""
        ...

    async def rewrite(
        self,
        page: Page,
        fills: Mapping[str, tuple[str, str, str]],
        banner: str = "",
        appends: Mapping[str, str] | None = None,
    ) -> tuple[Page, set[str]]:
        """Fill each selector's element with (html, decision id, slot), marking it with the
        decision and dropping ``data-edgepick-async`` (it is filled now); append ``banner``
        (HTML) to ``<body>``; append each of ``appends`` (selector -> HTML) inside the elements
        the selector matches (``edge.client_js.page_marks``); report the slots found."""
        ...

    def ship(self, url: str, body: bytes, headers: Mapping[str, str], events: int) -> None:
        """Deliver a batch of ``events`` events in the background (after the response),
        through ``ctx.waitUntil`` with bounded retries (``edge.delivery``), or to a queue."""
        ...

    def now_ms(self) -> int: ...

    def cpu_us(self) -> float: ...

    def token(self) -> str:
        """32 hex digits of fresh randomness."""
        ...
