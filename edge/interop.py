"""The one module that touches JavaScript: Cloudflare's runtime objects <-> ``edge.io``.

Works on both runtimes the worker meets: workerd's older Python Workers (module-level
``on_fetch``, raw JS request/env) and the current one (``WorkerEntrypoint``, whose SDK wraps
request and env: ``request.js_object`` and ``env._env`` are the raw objects underneath). Only raw
JS objects are used below, so both behave the same.
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
from collections.abc import Coroutine, Mapping
from typing import Any
from urllib.parse import urlsplit

from js import Date, Headers, HTMLRewriter, Object, Promise, Request, Response, fetch
from pyodide.ffi import create_once_callable, create_proxy, to_js

from edge import config as edge_config
from edge.delivery import DeliveryStats, deliver
from edge.handler import Stats, handle
from edge.io import Incoming, Outgoing, Page
from edge.queue_consumer import consume
from edge.snapshots import SnapshotCache

READ_HEADERS = (
    "x-edgepick-health-key",
    "cf-connecting-ip",
    "accept",
    "accept-language",
    "cookie",
    "user-agent",
    "referer",
    "sec-gpc",
    "sec-fetch-dest",
    "sec-purpose",
    "purpose",
    "x-moz",
    "cf-ipcountry",
    "content-type",
    "content-length",
)
BEACON_PATH = "/_edgepick/events"
MAX_BEACON_BYTES = 16 * 1024
POINTER_CACHE_TTL = 60  # seconds: Workers KV's minimum cacheTtl (it refuses less)
BLOB_CACHE_TTL = 86_400  # snap/<id> is immutable


def js_object(value: Mapping[str, Any]) -> Any:
    """A real JS object (a bare dict becomes a Map, which Web APIs silently ignore)."""
    return to_js(dict(value), dict_converter=Object.fromEntries)


def _null(value: Any) -> bool:
    return value is None or type(value).__name__ in ("JsNull", "JsUndefined")


def _bytes(value: Any) -> bytes | None:
    if _null(value):
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return bytes(value.to_bytes())


def _promise(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """A JS Promise settled by a Python coroutine: the form ``ctx.waitUntil`` runs to the end."""

    def executor(resolve: Any, reject: Any) -> None:
        task = asyncio.ensure_future(coroutine)

        def done(t: asyncio.Task[Any]) -> None:
            if t.cancelled() or t.exception() is not None:
                reject(str(t.exception() if not t.cancelled() else "cancelled"))
            else:
                resolve(None)

        task.add_done_callback(done)

    return Promise.new(create_once_callable(executor))


class _Filler:
    """An HTMLRewriter element handler filling one slot."""

    def __init__(self, html: str, decision: str, slot: str, found: set[str]) -> None:
        self.html, self.decision, self.slot, self.found = html, decision, slot, found

    def element(self, element: Any) -> None:
        element.setInnerContent(self.html, js_object({"html": True}))
        element.setAttribute("data-edgepick-decision", self.decision)
        element.removeAttribute("data-edgepick-async")  # filled now: the client leaves it
        self.found.add(self.slot)


class _Banner:
    """An HTMLRewriter element handler appending the preview banner to ``<body>``."""

    def __init__(self, html: str) -> None:
        self.html = html

    def element(self, element: Any) -> None:
        element.append(self.html, js_object({"html": True}))


class JsIO:
    """``edge.io.EdgeIO`` over the raw JS request, ``env`` and ``ctx``."""

    def __init__(self, request: Any, env: Any, ctx: Any, delivery: DeliveryStats) -> None:
        self.request = request
        self.env = env
        self.ctx = ctx
        self.delivery = delivery

    async def kv_get(self, key: str, binary: bool) -> bytes | str | None:
        kv = self.env.SNAPSHOTS
        if binary:
            options = js_object({"type": "arrayBuffer", "cacheTtl": BLOB_CACHE_TTL})
            return _bytes(await kv.get(key, options))
        value = await kv.get(key, js_object({"type": "text", "cacheTtl": POINTER_CACHE_TTL}))
        return None if _null(value) else str(value)

    async def fetch(self, url: str, headers: Mapping[str, str]) -> Page:
        response = await fetch(
            url, js_object({"method": "GET", "headers": js_object(headers), "redirect": "manual"})
        )
        content_type = response.headers.get("content-type")
        ctype = "" if _null(content_type) else str(content_type)
        return Page(int(response.status), {"content-type": ctype}, response)

    async def forward(self, url: str) -> Page:
        response = await fetch(Request.new(url, self.request))  # same method, headers, body
        content_type = response.headers.get("content-type")
        ctype = "" if _null(content_type) else str(content_type)
        return Page(int(response.status), {"content-type": ctype}, response)

    async def rewrite(
        self,
        page: Page,
        fills: Mapping[str, tuple[str, str, str]],
        banner: str = "",
        appends: Mapping[str, str] | None = None,
    ) -> tuple[Page, set[str]]:
        found: set[str] = set()
        rewriter = HTMLRewriter.new()
        handlers = []
        for selector, (html, decision, slot) in fills.items():
            handler = create_proxy(_Filler(html, decision, slot, found))
            handlers.append(handler)
            rewriter = rewriter.on(selector, handler)
        if banner:
            handler = create_proxy(_Banner(banner))
            handlers.append(handler)
            rewriter = rewriter.on("body", handler)
        for selector, html in (appends or {}).items():  # the page client's marks
            handler = create_proxy(_Banner(html))
            handlers.append(handler)
            rewriter = rewriter.on(selector, handler)
        try:
            # buffered, so the slots found are known; bytes, so the page keeps its own charset
            body = await rewriter.transform(page.handle).arrayBuffer()
        finally:
            for handler in handlers:
                handler.destroy()
        headers = Headers.new(page.handle.headers)
        headers.delete("content-length")
        rewritten = Response.new(body, js_object({"status": page.status, "headers": headers}))
        return Page(page.status, page.headers, rewritten), found

    def ship(self, url: str, body: bytes, headers: Mapping[str, str], events: int) -> None:
        queue = getattr(self.env, "EVENTS", None)
        if queue is not None and not _null(queue):  # a Queues producer: the durable option
            self.ctx.waitUntil(queue.send(body.decode()))
            self.delivery.queued += events
            return

        async def post() -> int:
            init = {"method": "POST", "body": body.decode(), "headers": js_object(headers)}
            response = await fetch(url, js_object(init))
            return int(response.status)

        async def run() -> None:
            if not await deliver(post, events, self.delivery, asyncio.sleep):
                print(f"edgepick: {events} events dropped ({self.delivery.last_error}) for {url}")

        self.ctx.waitUntil(_promise(run()))

    def now_ms(self) -> int:
        return int(Date.now())

    def cpu_us(self) -> float:
        return time.perf_counter() * 1e6

    def token(self) -> str:
        return os.urandom(16).hex()


def _var(env: Any, name: str) -> str:
    value = getattr(env, name, None)
    return "" if _null(value) else str(value)


_isolate: tuple[edge_config.EdgeConfig, SnapshotCache, Stats] | None = None


def _state(env: Any) -> tuple[edge_config.EdgeConfig, SnapshotCache, Stats]:
    global _isolate
    if _isolate is None:
        config = edge_config.load(lambda name: _var(env, name))
        _isolate = (config, SnapshotCache(config.snapshot_ttl_ms), Stats())
    return _isolate


async def _incoming(request: Any) -> Incoming:
    headers = {}
    for name in READ_HEADERS:
        value = request.headers.get(name)
        if not _null(value):
            headers[name] = str(value)
    cf = getattr(request, "cf", None)
    country = "" if _null(cf) else _var(cf, "country")
    method = str(request.method)
    url = str(request.url)
    body = b""
    if method == "POST" and urlsplit(url).path == BEACON_PATH:
        length = headers.get("content-length", "")
        if not length.isdigit() or int(length) <= MAX_BEACON_BYTES:
            body = await _read_at_most(request, MAX_BEACON_BYTES + 1)
    return Incoming(method, url, headers, country, body)


async def _read_at_most(request: Any, limit: int) -> bytes:
    """The body's first ``limit`` bytes, read chunk by chunk from its stream, which is then
    cancelled: a body without Content-Length (chunked) costs at most ``limit`` bytes of memory
    and the time to read them, however much a visitor sends."""
    stream = request.body
    if _null(stream):
        return b""
    reader = stream.getReader()
    chunks: list[bytes] = []
    size = 0
    try:
        while size < limit:
            part = await reader.read()
            if part.done:
                break
            chunk = bytes(part.value.to_py())
            chunks.append(chunk)
            size += len(chunk)
    finally:
        if size >= limit:
            await reader.cancel()
        reader.releaseLock()
    return b"".join(chunks)[:limit]


def _response(out: Outgoing) -> Any:
    if out.untouched and out.page is not None:
        return out.page.handle
    if out.page is not None:
        origin = out.page.handle
        response = Response.new(origin.body, origin)  # a copy has mutable headers
    else:
        response = Response.new(out.body, js_object({"status": out.status}))
    for name, value in out.headers:
        if name == "set-cookie":
            response.headers.append(name, value)
        else:
            response.headers.set(name, value)
    return response


async def serve(request: Any, env: Any, ctx: Any) -> Any:
    """Handle one request on either runtime; returns a JS Response."""
    raw_request = getattr(request, "js_object", request)
    raw_env = getattr(env, "_env", env)
    try:
        config, cache, stats = _state(raw_env)
        incoming = await _incoming(raw_request)
    except Exception:  # fail open before anything is known: the origin answers
        traceback.print_exc()
        return await fetch(raw_request)
    io = JsIO(raw_request, raw_env, ctx, stats.delivery)
    out = await handle(incoming, io, cache, config, stats)
    try:
        return _response(out)
    except Exception as exc:  # fail open: the origin's page as it is
        stats.errors += 1
        stats.last_error = f"response: {type(exc).__name__}: {exc}"[:300]
        return await fetch(raw_request)


class _QueuedMessage:
    """A Queues message (JS) as ``edge.queue_consumer.Message``."""

    def __init__(self, message: Any) -> None:
        self.message = message

    @property
    def body(self) -> Any:
        return str(self.message.body)

    def ack(self) -> None:
        self.message.ack()

    def retry(self) -> None:
        self.message.retry()


async def on_queue(batch: Any, env: Any, ctx: Any) -> None:
    """The Queues consumer entry (production; local wrangler 3.92 cannot run a Python consumer):
    each queued batch to the collector, acknowledged once stored (``edge.queue_consumer``)."""
    raw_env = getattr(env, "_env", env)
    config, _cache, stats = _state(raw_env)

    async def post(body: bytes, headers: Mapping[str, str]) -> int:
        init = {"method": "POST", "body": body.decode(), "headers": js_object(headers)}
        response = await fetch(config.collector_url, js_object(init))
        return int(response.status)

    raw = getattr(batch, "_binding", batch)  # the current SDK wraps the JS batch
    messages = [_QueuedMessage(m) for m in raw.messages]
    await consume(messages, post, config.events_secret, stats.delivery)
