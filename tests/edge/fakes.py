"""In-memory stand-ins for the runtime, for the edge logic under CPython.

``FakeIO.rewrite`` stands in for HTMLRewriter (which exists only in workerd and, for the Pyodide
tests, in html-rewriter-wasm): it fills elements selected by ``[data-edgepick-slot="NAME"]``,
the only selector form the fixture uses. The real rewriter is exercised end to end through
wrangler dev and under Pyodide.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.io import Completion, OriginTimeout, Page, Rewritten

SELECTOR = re.compile(r'^\[data-edgepick-slot="([^"]+)"\]$')


@dataclass
class FakeIO:
    kv: dict[str, bytes | str] = field(default_factory=dict)
    pages: dict[str, tuple[int, str, str]] = field(
        default_factory=dict
    )  # path -> status, type, body
    now: int = 1_790_000_000_000
    fetched: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    forwarded: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # headers the last forward left out
    shipped: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    tokens: int = 0
    seed: str = ""  # tells the tokens of several runtimes (several visitors' edges) apart
    cpu: float = 0.0
    cpu_step: float = 0.0
    slow: set[str] = field(default_factory=set)  # paths whose origin never answers in time
    pending: list[Coroutine[Any, Any, None]] = field(default_factory=list)  # io.later's work
    streamed: int = 0  # rewrites asked to stream

    async def kv_get(self, key: str, binary: bool) -> bytes | str | None:
        value = self.kv.get(key)
        if value is None:
            return None
        if binary:
            return value if isinstance(value, bytes) else value.encode()
        return value.decode() if isinstance(value, bytes) else value

    async def fetch(self, url: str, headers: Mapping[str, str], timeout_ms: int = 0) -> Page:
        self.fetched.append((url, dict(headers)))
        path = "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0]
        if path in self.slow:
            raise OriginTimeout(f"no response headers within {timeout_ms} ms")
        status, ctype, body = self.pages.get(path, (404, "text/plain", "not found"))
        return Page(status, {"content-type": ctype}, body)

    async def forward(self, url: str, timeout_ms: int = 0, drop: Sequence[str] = ()) -> Page:
        self.forwarded.append(url)
        self.dropped = list(drop)
        return await self.fetch(url, {})

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        self.pending.append(work)

    async def drain(self) -> None:
        """Run what ``later`` was given (as the runtime does after the response)."""
        while self.pending:
            await self.pending.pop(0)

    async def rewrite(
        self,
        page: Page,
        fills: Mapping[str, tuple[str, str, str]],
        banner: str = "",
        appends: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Rewritten:
        self.streamed += stream
        html: Any = page.handle
        found: set[str] = set()
        for selector, (content, decision, slot) in fills.items():
            match = SELECTOR.match(selector)
            assert match, f"fake rewriter supports only slot attribute selectors, not {selector}"
            pattern = re.compile(
                r'<(\w+)([^>]*data-edgepick-slot="'
                + re.escape(match.group(1))
                + r'"[^>]*)>(.*?)</\1>',
                re.S,
            )

            def fill(m: re.Match[str], content: str = content, decision: str = decision) -> str:
                tag, attrs = m.group(1), m.group(2).replace(" data-edgepick-async", "")
                return f'<{tag}{attrs} data-edgepick-decision="{decision}">{content}</{tag}>'

            html, count = pattern.subn(fill, html)
            if count:
                found.add(slot)
        if banner:
            html = html.replace("</body>", banner + "</body>", 1)
        for selector, extra in (appends or {}).items():  # "head" or a slot attribute selector
            match = SELECTOR.match(selector)
            if selector == "head":
                html = html.replace("</head>", extra + "</head>", 1)
                continue
            assert match, f"fake rewriter appends only to head and slots, not {selector}"
            name = re.escape(match.group(1))
            element = r'(<(\w+)[^>]*data-edgepick-slot="' + name + r'"[^>]*>.*?)(</\2>)'

            def add(m: re.Match[str], extra: str = extra) -> str:
                return m.group(1) + extra + m.group(3)

            html = re.sub(element, add, html, flags=re.S)
        return Rewritten(Page(page.status, page.headers, html), found, Completion(True))

    def ship(self, url: str, body: bytes, headers: Mapping[str, str], events: int) -> None:
        self.shipped.append((url, body, dict(headers)))

    def now_ms(self) -> int:
        return self.now

    def cpu_us(self) -> float:
        """A clock frozen like workerd's (0 elapsed) unless ``cpu_step`` makes it tick."""
        self.cpu += self.cpu_step
        return self.cpu

    def token(self) -> str:
        self.tokens += 1
        unique = f"{self.seed}:{self.tokens}" if self.seed else str(self.tokens)
        return hashlib.md5(unique.encode()).hexdigest()  # distinct in every prefix
