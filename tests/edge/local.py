"""The edge's request logic run in-process with the in-memory runtime (tests/edge/fakes.py): a
visitor with a cookie jar, and every event the handler shipped. Origin tests record their events
here, so stitching, training rows and evaluation start from what the edge really emits."""

from __future__ import annotations

import asyncio
import collections
import json
import os
from typing import Any

from core import events, identity
from core.snapshot import decode_header
from edge.config import EdgeConfig, load
from edge.handler import Stats, handle
from edge.io import Incoming, Outgoing
from edge.snapshots import SnapshotCache
from tests.conftest import FIXTURES
from tests.edge.fakes import FakeIO

ENV = {
    "ORIGIN_URL": "http://origin.test",
    "COLLECTOR_URL": "http://collector.test/v1/events",
    "EVENTS_SECRET": "events-secret",
    "COOKIE_KEYS": "k2:new-cookie-secret,k1:old-cookie-secret",
    "PREVIEW_KEY": "preview-secret",
    "IDENTITY_KEY": "identity-secret",
    "HEALTH_KEY": "health-secret",
    "SNAPSHOT_TTL_SECONDS": "0",
}
UA_MOBILE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
UA_DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


def pages() -> dict[str, tuple[int, str, str]]:
    html = {p.stem: p.read_text() for p in (FIXTURES / "pages").glob("*.html")}
    return {
        "/": (200, "text/html; charset=utf-8", html["index"]),
        "/landing/outdoor": (200, "text/html; charset=utf-8", html["landing-outdoor"]),
        "/landing/deals": (200, "text/html; charset=utf-8", html["landing-deals"]),
        "/logo.png": (200, "image/png", "PNG..."),
        **{
            path: (200, "text/html; charset=utf-8", html["category"])
            for path in CATALOG  # what the sample store serves category.html for
        },
    }


CATALOG = ("/c/running", "/c/hiking", "/c/yoga", "/p/run-trail-shoe", "/cart", "/checkout")


_EDGES: collections.Counter[str] = collections.Counter()  # Edges made so far, per test


def _seed() -> str:
    """Each Edge's own random ids, the same whichever tests ran before: seeded by the test that
    makes it (pytest names it in ``PYTEST_CURRENT_TEST``) and how many Edges it made before."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    made = _EDGES[test]
    _EDGES[test] += 1
    return f"edge-{test}-{made}"


class Edge:
    def __init__(self, blob: bytes | None, env: dict[str, str] | None = None) -> None:
        self.io = FakeIO(pages=pages(), seed=_seed())
        if blob is not None:
            sid = decode_header(blob)[0].id
            self.io.kv.update({"snap/current": sid, f"snap/{sid}": blob})
        self.config: EdgeConfig = load(lambda k: (env or ENV).get(k, ""))
        self.cache = SnapshotCache(self.config.snapshot_ttl_ms)
        self.stats = Stats()
        self.jar: dict[str, str] = {}

    def request(
        self,
        path: str,
        method: str = "GET",
        body: bytes = b"",
        keep: bool = True,
        country: str = "US",
        **headers: str,
    ) -> Outgoing:
        hdrs = {k.replace("_", "-").lower(): v for k, v in headers.items()}
        hdrs.setdefault("user-agent", UA_DESKTOP)  # a browser (no User-Agent: a tool, a bot)
        if self.jar and "cookie" not in hdrs:
            hdrs["cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        incoming = Incoming(method, f"https://shop.test{path}", hdrs, country, body)

        async def run() -> Outgoing:
            out = await handle(incoming, self.io, self.cache, self.config, self.stats)
            await self.io.drain()  # what runs after the response (ctx.waitUntil)
            return out

        out = asyncio.run(run())
        if keep:
            for name, value in out.headers:
                if name == "set-cookie":
                    k, v = value.split(";")[0].split("=", 1)
                    self.jar[k] = v
        self.io.now += 60_000
        return out

    def shipped(self) -> list[dict[str, Any]]:
        """Every event the edge shipped, in order; each batch's signature must verify and each
        event must pass ``core.events.problem`` (what the collector checks)."""
        found: list[dict[str, Any]] = []
        for _url, body, headers in self.io.shipped:
            assert events.verify(body, headers[events.SIGNATURE_HEADER], b"events-secret")
            batch = json.loads(body)["events"]
            assert all(events.problem(e) is None for e in batch)
            found.extend(batch)
        return found

    def exposures(self) -> list[dict[str, Any]]:
        return [e for e in self.shipped() if e["type"] == events.EXPOSURE]

    def page_views(self) -> list[dict[str, Any]]:
        return [e for e in self.shipped() if e["type"] == events.PAGE_VIEW]

    def identify(self, user: str) -> dict[str, Any]:
        """The page's ``edgepick.identify(token)`` for ``user``: the beacon's answer."""
        token = identity.sign(user, self.io.now // 1000 + 600, b"identity-secret")
        body = json.dumps({"events": [{"type": "identify", "token": token}]}).encode()
        reply = self.request("/_edgepick/events", method="POST", body=body)
        answer: dict[str, Any] = json.loads(reply.body)  # type: ignore[arg-type]
        return answer


def health(edge: Edge) -> dict[str, Any]:
    """The edge's ``/_edgepick/health`` with its details (the operator's ``HEALTH_KEY``)."""
    out = edge.request("/_edgepick/health", x_edgepick_health_key=ENV["HEALTH_KEY"])
    found: dict[str, Any] = json.loads(out.body or b"{}")
    return found
