"""The one module that touches JavaScript: Cloudflare's runtime objects <-> ``edge.io``.

Works on both runtimes the worker meets: workerd's older Python Workers (module-level
``on_fetch``, raw JS request/env) and the current one (``WorkerEntrypoint``, whose SDK wraps
request and env: ``request.js_object`` and ``env._env`` are the raw objects underneath). Only raw
JS objects are used below, so both behave the same.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import time
import traceback
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from js import (
    AbortController,
    Headers,
    HTMLRewriter,
    Object,
    Promise,
    Request,
    Response,
    clearTimeout,
    fetch,
    setTimeout,
)
from pyodide.ffi import create_once_callable, create_proxy, to_js

from core.engine import Engine
from edge import config as edge_config
from edge.client_js import DEFAULT_TEMPLATE
from edge.delivery import DeliveryStats, deliver
from edge.handler import Stats, handle
from edge.io import (
    STREAM_WAIT_S,
    Completion,
    Incoming,
    OriginTimeout,
    Outgoing,
    Page,
    Rewritten,
)
from edge.queue_consumer import consume
from edge.snapshots import SnapshotCache

BEACON_PATH = "/_edgepick/events"
MAX_BEACON_BYTES = 16 * 1024
POINTER_CACHE_TTL = 60  # seconds: Workers KV's minimum cacheTtl (it refuses less)
BLOB_CACHE_TTL = 86_400  # snap/<id> is immutable


def js_object(value: Mapping[str, Any]) -> Any:
    """A real JS object (a bare dict becomes a Map, which Web APIs silently ignore); dicts
    nested in it become objects too, in the same conversion."""
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


_HTML_OPTION: Any = None


def _html_option() -> Any:
    """``{html: true}``, made once per isolate (a conversion costs an FFI crossing)."""
    global _HTML_OPTION
    if _HTML_OPTION is None:
        _HTML_OPTION = js_object({"html": True})
    return _HTML_OPTION


class _Held(Completion):
    """A streamed page's end that keeps its request alive (``ctx.waitUntil`` of a promise
    released when it finishes) from the first callback given to it: what waits for the end
    runs after the response, without a task or an event-loop turn of its own."""

    __slots__ = ("ctx", "release")

    def __init__(self, ctx: Any) -> None:
        super().__init__()
        self.ctx, self.release = ctx, None

    def then(self, callback: Callable[[bool], None]) -> None:
        if self.result is None and self.release is None:
            self.ctx.waitUntil(Promise.new(create_once_callable(self._hold)))
        super().then(callback)

    def _hold(self, resolve: Any, _reject: Any) -> None:
        self.release = resolve

    def finish(self, complete: bool) -> bool:
        try:
            return super().finish(complete)
        finally:
            release, self.release = self.release, None
            if release is not None:
                release()


class _Rewrite:
    """One page's rewrite as it streams: the slots met so far, the end of its document, the JS
    timer that gives up waiting for that end (``STREAM_WAIT_S``) and when it started."""

    __slots__ = ("done", "found", "slots", "started_ms", "timer")

    def __init__(self, done: Completion, started_ms: int) -> None:
        self.done, self.found, self.timer, self.started_ms = done, set[str](), None, started_ms
        self.slots: dict[str, tuple[str, str]] = {}  # slot -> (html, decision id), by attribute


# pages being rewritten, by key, oldest first. The handlers' functions are Python functions
# made JS-callable once per isolate (``_function``); a page's handlers are plain JS objects
# holding them and the page's key (and, for a handler of its own, its fill or markup). The
# rewriter calls ``handler.element(el)``; the function gets the handler object itself first
# (``this``, by create_proxy's ``capture_this``) and reads what it is for from it: no proxy per
# page (nothing to release), no ``bind`` (a PyProxy's bind copies the proxy: ~15 us under
# Pyodide, bench/edge_vs_js.py), one conversion per page for all its shared handlers.
_rewrites: dict[int, _Rewrite] = {}
_keys = itertools.count()
_functions: dict[str, Any] = {}


def _put(key: int, html: str, decision: str, slot: str, element: Any) -> None:
    element.setInnerContent(html, _html_option())
    element.setAttribute("data-edgepick-decision", decision)
    element.removeAttribute("data-edgepick-async")  # filled now: the client leaves it
    rewrite = _rewrites.get(key)
    if rewrite is not None:
        rewrite.found.add(slot)


def _fill(this: Any, element: Any) -> None:
    """A fill with a selector of its own: ``this`` holds the page's key, the slot and its fill."""
    _put(this.key, this.html, this.decision, this.slot, element)


def _fill_marked(this: Any, element: Any) -> None:
    """Any element marked ``data-edgepick-slot``: filled if this page (``this.key``) decided
    that slot (one handler for every slot with the default selector, instead of one per slot)."""
    key = this.key
    rewrite = _rewrites.get(key)
    if rewrite is None:
        return
    slot = str(element.getAttribute("data-edgepick-slot"))
    fill = rewrite.slots.get(slot)
    if fill is not None:
        _put(key, fill[0], fill[1], slot, element)


def _append(this: Any, element: Any) -> None:
    element.append(this.html, _html_option())


def _end(this: Any, _document_end: Any) -> None:
    """The document's end (``this.key``'s page): the page's slots are all known."""
    _ended(this.key)


def _ended(key: int) -> None:
    rewrite = _rewrites.pop(key, None)
    if rewrite is not None:
        if rewrite.timer is not None:
            clearTimeout(rewrite.timer)
        rewrite.done.finish(True)


def _expire(key: int) -> None:
    """No end of document within ``STREAM_WAIT_S`` (a visitor gone mid-page, a stalled origin):
    the page's events go with the slots met so far. The timer was set by the page's own request,
    so its end is told in that request's context. The page stays known, so slots that
    still arrive are filled (``_end`` or ``_sweep`` forgets it)."""
    rewrite = _rewrites.get(key)
    if rewrite is not None:
        rewrite.done.finish(False)


FORGET_AFTER_MS = 60_000


def _sweep(now_ms: int) -> None:
    """Forget pages begun ``FORGET_AFTER_MS`` ago whose end never came (a visitor gone from a
    page nothing waits for: a bot's, a prefetch's; workerd drops a finished request's timers).
    Only forgets: a page's end is never told from another request's context."""
    while _rewrites:
        key, oldest = next(iter(_rewrites.items()))  # insertion order: oldest first
        if now_ms - oldest.started_ms <= FORGET_AFTER_MS:
            return
        del _rewrites[key]


_appends: dict[str, Any] = {}  # html -> its append handler: they hold nothing of a page's own
MAX_APPENDS = 256


def _append_handler(html: str) -> Any:
    """The handler appending ``html``, made once per isolate and html for what repeats from
    view to view (a page's async slots' default templates: no conversion of them per request);
    what names this view (the page-level decision's mark, a preview's banner) is made for it
    alone, so it never pushes the templates out."""
    if not html.startswith(DEFAULT_TEMPLATE):  # made for this view alone
        return _handler("append", html=html)
    handler = _appends.get(html)
    if handler is None:
        if len(_appends) >= MAX_APPENDS:
            _appends.clear()
        handler = _appends[html] = _handler("append", html=html)
    return handler


_METHODS = {"fill": _fill, "marked": _fill_marked, "append": _append, "end": _end}


def _abort(controller: Any) -> None:
    """The origin's time is up: abort its fetch."""
    controller.abort()


_TIMERS = {"expire": _expire, "abort": _abort}


def _function(kind: str) -> Any:
    """The isolate's JS-callable function for ``kind``: a handler method (``_METHODS``, given
    ``this``), or a timer's callback (``_TIMERS``: ``setTimeout`` gives it its argument)."""
    function = _functions.get(kind)
    if function is None:
        if kind in _TIMERS:
            function = create_proxy(_TIMERS[kind])
        else:
            function = create_proxy(_METHODS[kind], capture_this=True)
        _functions[kind] = function
    return function


def _handler(kind: str, **fields: Any) -> Any:
    """A JS handler object for one ``kind``: ``{element: f, **fields}``."""
    return js_object({"element": _function(kind), **fields})


def _on(rewriter: Any, selector: str, handler: Any) -> bool:
    """``rewriter.on``; False (logged) for a selector HTMLRewriter refuses: that slot stays as
    the origin sent it, the page's other slots are still filled."""
    try:
        rewriter.on(selector, handler)
    except Exception as exc:
        print(f"edgepick: selector {selector!r} refused by HTMLRewriter: {exc}")
        return False
    return True


async def _within(promise: Any, timeout_ms: int, controller: Any) -> Any:
    """``promise`` (a fetch given ``controller.signal``), or ``OriginTimeout`` when no response
    came within ``timeout_ms``: a JS timer aborts the fetch (the isolate's one ``_abort``
    function, given the controller: no function made per request, no Python run unless it
    fires), and is cleared once the response headers are in (the body may stream on)."""
    timer = setTimeout(_function("abort"), timeout_ms, controller)
    try:
        return await promise
    except Exception:
        if controller.signal.aborted:
            raise OriginTimeout(f"no response headers within {timeout_ms} ms") from None
        raise
    finally:
        clearTimeout(timer)


class JsIO:
    """``edge.io.EdgeIO`` over the raw JS request, ``env`` and ``ctx``."""

    def __init__(
        self,
        request: Any,
        env: Any,
        ctx: Any,
        delivery: DeliveryStats,
        sent: Mapping[str, str] | None = None,
    ) -> None:
        self.request = request
        self.env = env
        self.ctx = ctx
        self.delivery = delivery
        self.sent = sent  # the request's headers as read (``_incoming``), when known

    async def kv_get(self, key: str, binary: bool) -> bytes | str | None:
        kv = self.env.SNAPSHOTS
        if binary:
            options = js_object({"type": "arrayBuffer", "cacheTtl": BLOB_CACHE_TTL})
            return _bytes(await kv.get(key, options))
        value = await kv.get(key, js_object({"type": "text", "cacheTtl": POINTER_CACHE_TTL}))
        return None if _null(value) else str(value)

    async def fetch(self, url: str, headers: Mapping[str, str], timeout_ms: int) -> Page:
        controller = AbortController.new()
        init = {"method": "GET", "headers": self._headers(headers), "redirect": "manual"}
        init["signal"] = controller.signal
        return _page(await _within(fetch(url, js_object(init)), timeout_ms, controller))

    def _headers(self, headers: Mapping[str, str]) -> Any:
        """``headers`` for a JS call. Mostly the visitor's own: then a JS copy of the request's
        headers, changed where ``headers`` differ (a few names), so the visitor's header text
        (its cookie, its User-Agent...) is not written back into JS: Pyodide writes a str one
        character at a time, a string object per character for V8 to collect."""
        sent = self.sent
        if sent is None:
            return dict(headers)  # js_object turns the nested dict into an object too
        copied = Headers.new(self.request.headers)
        for name in sent:
            if name not in headers:
                copied.delete(name)
        for name, value in headers.items():
            if sent.get(name) != value:
                copied.set(name, value)
        return copied

    async def forward(self, url: str, timeout_ms: int, drop: Sequence[str] = ()) -> Page:
        request = Request.new(url, self.request)  # same method, headers, body
        for name in drop:
            request.headers.delete(name)
        controller = AbortController.new()
        init = js_object({"signal": controller.signal})
        return _page(await _within(fetch(request, init), timeout_ms, controller))

    async def rewrite(
        self,
        page: Page,
        fills: Mapping[str, tuple[str, str, str]],
        banner: str = "",
        appends: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Rewritten:
        now = self.now_ms()
        _sweep(now)
        key = next(_keys)
        done = _Held(self.ctx) if stream else Completion()
        rewrite = _rewrites[key] = _Rewrite(done, now)
        rewriter = HTMLRewriter.new()
        for selector, (html, decision, slot) in fills.items():
            if selector == f'[data-edgepick-slot="{slot}"]':  # the default: one handler for all
                rewrite.slots[slot] = (html, decision)
            else:
                handler = _handler("fill", key=key, html=html, decision=decision, slot=slot)
                _on(rewriter, selector, handler)
        # the page's own handler object: its marked slots' elements and the document's end
        page_handler = js_object(
            {"element": _function("marked"), "end": _function("end"), "key": key}
        )
        if rewrite.slots:
            rewriter.on("[data-edgepick-slot]", page_handler)
        if banner:
            rewriter.on("body", _append_handler(banner))
        for selector, html in (appends or {}).items():  # the page client's marks
            _on(rewriter, selector, _append_handler(html))
        rewriter.onDocument(page_handler)
        transformed = rewriter.transform(page.handle)
        if stream:  # the body flows to the visitor as the origin sends it
            rewrite.timer = setTimeout(_function("expire"), int(STREAM_WAIT_S * 1000), key)
            # the rewriter keeps the origin's status and headers: nothing to read back
            transformed_page = Page(page.status, page.headers, transformed)
            return Rewritten(transformed_page, rewrite.found, rewrite.done)
        try:  # buffered: the slots found are known on return; bytes keep the page's charset
            body = await transformed.arrayBuffer()
        finally:
            _ended(key)
        headers = Headers.new(page.handle.headers)
        headers.delete("content-length")
        rewritten = Response.new(body, js_object({"status": page.status, "headers": headers}))
        return Rewritten(Page(page.status, page.headers, rewritten), rewrite.found, rewrite.done)

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        self.ctx.waitUntil(_promise(work))

    def _queue(self) -> Any:
        queue = getattr(self.env, "EVENTS", None)
        return None if queue is None or _null(queue) else queue

    def ship(self, url: str, body: bytes, headers: Mapping[str, str], events: int) -> None:
        """After the response (``waitUntil``): to the Queues producer when one is bound, else
        over HTTP with ``edge.delivery``'s retries. Never raises into the page: the page is
        served whatever becomes of its events, and a failure here is logged and in health's
        ``last_error``."""
        try:
            queue = self._queue()
        except Exception as exc:  # the binding could not be read: nothing was started
            self.delivery.dropped += events
            self.delivery.last_error = f"ship: {type(exc).__name__}: {exc}"[:300]
            print(f"edgepick: {events} events dropped ({self.delivery.last_error})")
            return
        if queue is not None:
            work = self._enqueue(queue, body, events)
        else:
            work = self._post(url, body, headers, events)
        try:
            self.later(work)
        except Exception as exc:  # not held: it may still run (and count itself) or be cut short
            self.delivery.last_error = f"ship: {type(exc).__name__}: {exc}"[:300]
            print(f"edgepick: {events} events may be lost ({self.delivery.last_error})")

    async def _enqueue(self, queue: Any, body: bytes, events: int) -> None:
        try:
            await queue.send(body.decode())
        except Exception as exc:  # counted and logged, as an HTTP delivery's failure is
            self.delivery.dropped += events
            self.delivery.last_error = f"queue: {type(exc).__name__}: {exc}"[:300]
            print(f"edgepick: {events} events dropped ({self.delivery.last_error})")
            return
        self.delivery.queued += events

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str], events: int) -> None:
        """The batch to the collector over HTTP, with ``edge.delivery.deliver``'s retries."""

        async def post() -> int:
            return await _post_batch(url, body, headers)

        if not await deliver(post, events, self.delivery, asyncio.sleep):
            print(f"edgepick: {events} events dropped ({self.delivery.last_error}) for {url}")

    def now_ms(self) -> int:
        # the wall clock Date.now() reads (Emscripten's clock is Date.now), without a crossing;
        # in integer nanoseconds, so no float rounding takes a millisecond off
        return time.time_ns() // 1_000_000

    def cpu_us(self) -> float:
        return time.perf_counter() * 1e6

    def token(self) -> str:
        return os.urandom(16).hex()


async def _post_batch(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    """POST one signed batch; the collector's status. The body goes as bytes (a Uint8Array: one
    copy), not a str: Pyodide writes a str into JS one character at a time (a string object per
    character, for V8 to collect; the batch is the largest text a request sends)."""
    init = {"method": "POST", "body": body, "headers": dict(headers)}
    response = await fetch(url, js_object(init))
    return int(response.status)


def _page(response: Any, status: int | None = None) -> Page:
    content_type = response.headers.get("content-type")
    ctype = "" if _null(content_type) else str(content_type)
    code = int(response.status) if status is None else status
    return Page(code, {"content-type": ctype}, response)


def _var(env: Any, name: str) -> str:
    value = getattr(env, name, None)
    return "" if _null(value) else str(value)


_isolate: tuple[edge_config.EdgeConfig, SnapshotCache, Stats] | None = None


def _bundled() -> Engine | None:
    """The snapshot bundled with the worker (``python -m compile.bundle --snapshot``), prepared
    here at import: the runtime's memory snapshot of the imported worker holds it, so a new
    isolate starts with it ready and reads KV only for the pointer (a different current
    snapshot there supersedes it). None when the bundle has none, or it cannot be prepared."""
    try:
        from edge.bundled import SNAPSHOT
    except ImportError:
        return None
    try:
        return Engine.from_bytes(SNAPSHOT)
    except Exception:
        traceback.print_exc()
        return None


BUNDLED = _bundled()
if BUNDLED is not None:  # its first requests' first runs, done now: in the import snapshot
    from edge.warmup import warm

    warm(BUNDLED)
gc.collect()  # the warm-up's garbage goes now, not frozen below
# what import made (modules, the bundled engine) lives as long as the isolate: out of the
# cyclic collector's way, so its collections scan only what requests allocate (shorter pauses)
gc.freeze()


def _state(env: Any) -> tuple[edge_config.EdgeConfig, SnapshotCache, Stats]:
    global _isolate
    if _isolate is None:
        config = edge_config.load(lambda name: _var(env, name))
        cache = SnapshotCache(config.snapshot_ttl_ms)
        if BUNDLED is not None:
            cache.engines[BUNDLED.snapshot_id] = BUNDLED
            cache.current = BUNDLED.snapshot_id
        _isolate = (config, cache, Stats())
    return _isolate


async def _incoming(request: Any) -> Incoming:
    # every header at once (names come lower-case; repeated ones joined by ", "): a JS object
    # of them converted in one go (11.7 us under Pyodide; through JSON text 18.7 us)
    headers: dict[str, str] = Object.fromEntries(request.headers).to_py()
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
    headers = response.headers  # one crossing for them all
    for name, value in out.headers:
        if name == "set-cookie":
            headers.append(name, value)
        else:
            headers.set(name, value)
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
    io = JsIO(raw_request, raw_env, ctx, stats.delivery, incoming.headers)
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
        return await _post_batch(config.collector_url, body, headers)

    raw = getattr(batch, "_binding", batch)  # the current SDK wraps the JS batch
    messages = [_QueuedMessage(m) for m in raw.messages]
    await consume(messages, post, config.events_secret, stats.delivery)
