"""edge.interop's bookkeeping of pages being rewritten, under CPython: the JS runtime (``js``,
``pyodide.ffi``) is replaced by stand-ins for this module's unit tests only; the real runtime is
exercised by tests/edge/test_pyodide.py and, through workerd, tests/edge/test_wrangler_proxy.py
(a page whose end never comes)."""

from __future__ import annotations

import asyncio
import gc
import importlib
import sys
import types
from collections.abc import Iterator
from typing import Any
from unittest.mock import MagicMock

import pytest

from edge.io import Completion

JS_NAMES = [
    "JSON",
    "AbortController",
    "Headers",
    "HTMLRewriter",
    "Object",
    "Promise",
    "Request",
    "Response",
    "clearTimeout",
    "fetch",
    "setTimeout",
]


@pytest.fixture
def interop(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    js = types.ModuleType("js")
    for name in JS_NAMES:
        setattr(js, name, MagicMock(name=name))
    ffi = types.ModuleType("pyodide.ffi")
    ffi.create_once_callable = lambda f: f  # type: ignore[attr-defined]
    made: list[tuple[Any, dict[str, Any]]] = []  # every JS-callable made, with its options

    def create_proxy(function: Any, **options: Any) -> Any:
        made.append((function, options))
        return function

    ffi.create_proxy = create_proxy  # type: ignore[attr-defined]
    ffi.made = made  # type: ignore[attr-defined]
    ffi.to_js = lambda value, **_: value  # type: ignore[attr-defined]
    pyodide = types.ModuleType("pyodide")
    pyodide.ffi = ffi  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "js", js)
    monkeypatch.setitem(sys.modules, "pyodide", pyodide)
    monkeypatch.setitem(sys.modules, "pyodide.ffi", ffi)
    monkeypatch.setattr(gc, "freeze", lambda: None)  # not this test process's whole heap
    monkeypatch.delitem(sys.modules, "edge.interop", raising=False)
    module = importlib.import_module("edge.interop")
    yield module
    sys.modules.pop("edge.interop", None)


def element(slot: str) -> MagicMock:
    found = MagicMock()
    found.getAttribute.return_value = slot
    return found


def test_a_page_past_its_wait_still_has_its_slots_filled(interop: Any) -> None:
    told: list[bool] = []
    page = interop._Rewrite(Completion(), 0)
    page.done.then(told.append)
    page.slots["hero"] = ("<b>hero</b>", "d-1")
    interop._rewrites[7] = page
    interop._expire(7)  # the wait is over: the events go with what was met
    assert told == [False]
    late = element("hero")
    handler = types.SimpleNamespace(key=7)  # the page's handler object: ``this``
    interop._fill_marked(handler, late)  # ... but the page still streams: its slot is filled
    late.setInnerContent.assert_called_once()
    assert page.found == {"hero"}
    interop._end(handler, None)  # the end, late: forgotten, told once only
    assert 7 not in interop._rewrites and told == [False]


def test_pages_whose_end_never_comes_are_forgotten_not_told(interop: Any) -> None:
    old = interop._Rewrite(Completion(), 1_000)
    recent = interop._Rewrite(Completion(), 1_000 + interop.FORGET_AFTER_MS)
    interop._rewrites.update({1: old, 2: recent})
    interop._sweep(2_001 + interop.FORGET_AFTER_MS)
    assert list(interop._rewrites) == [2]
    assert not old.done.finished  # never told from another request's context


class Ctx:
    def __init__(self) -> None:
        self.held: list[Any] = []

    def waitUntil(self, promise: Any) -> None:
        self.held.append(promise)


def shipping(interop: Any, env: Any) -> tuple[Any, Any, list[Any]]:
    from edge.delivery import DeliveryStats

    stats, work = DeliveryStats(), list[Any]()
    io = interop.JsIO(MagicMock(), env, Ctx(), stats)
    io.later = work.append
    return io, stats, work


def test_a_queue_that_refuses_a_batch_is_counted(interop: Any) -> None:
    class Queue:
        async def send(self, body: str) -> None:
            raise RuntimeError("queue full")

    io, stats, work = shipping(interop, types.SimpleNamespace(EVENTS=Queue()))
    io.ship("http://collector.test/v1/events", b'{"events":[]}', {}, 3)
    asyncio.run(work.pop())
    assert stats.dropped == 3 and stats.queued == 0 and "queue full" in stats.last_error


def test_shipping_never_raises_into_the_page(interop: Any) -> None:
    """A runtime call that fails while a batch is handed over (the page's response is being
    made, or the rewriter's end of document is running) is logged, not raised into the page:
    a binding that cannot be read costs the batch, counted; a hold refused is told in health."""
    io, stats, _work = shipping(interop, types.SimpleNamespace())

    def refused(work: Any) -> None:
        work.close()  # the runtime drops it
        raise RuntimeError("waitUntil refused")

    io.later = refused
    io.ship("http://collector.test/v1/events", b'{"events":[]}', {}, 2)
    assert "waitUntil refused" in stats.last_error

    class Env:
        @property
        def EVENTS(self) -> Any:
            raise RuntimeError("binding unreadable")

    io, stats, work = shipping(interop, Env())
    io.ship("http://collector.test/v1/events", b'{"events":[]}', {}, 3)
    assert stats.dropped == 3 and "binding unreadable" in stats.last_error and work == []


def test_a_streamed_page_holds_its_request_until_its_end(interop: Any) -> None:
    """The request is held (``waitUntil``) from the first callback on, and released when the
    page ends, even when a callback raises (logged: the page streams on)."""
    released: list[bool] = []

    def promise(executor: Any) -> str:
        executor(lambda: released.append(True), None)
        return "hold"

    interop.Promise.new = promise
    ctx = Ctx()
    held = interop._Held(ctx)
    assert ctx.held == []  # nothing waits: nothing held

    def broken(_complete: bool) -> None:
        raise RuntimeError("a bug in what waits")

    told: list[bool] = []
    held.then(broken)
    held.then(told.append)
    assert ctx.held == ["hold"] and released == []
    assert held.finish(True) and told == [True] and released == [True]
    assert not held.finish(False) and told == [True] and released == [True]


def test_only_marks_that_repeat_are_kept_for_the_next_views(interop: Any) -> None:
    """An async slot's default template is the same on every view: its handler is made once.
    The page-level decision's mark names one view: made for it alone, never kept."""
    from edge.client_js import DEFAULT_TEMPLATE

    template = f"{DEFAULT_TEMPLATE}<p>default</p></template>"
    assert interop._append_handler(template) is interop._append_handler(template)
    meta = '<meta name="edgepick-decision" content="abc-0" data-edgepick-slot="landing">'
    for _ in range(3):
        interop._append_handler(meta)
    assert list(interop._appends) == [template]


class Rewriter:
    """HTMLRewriter's calls, recorded."""

    def __init__(self) -> None:
        self.on_calls: list[tuple[str, Any]] = []
        self.document: list[Any] = []

    def on(self, selector: str, handler: Any) -> None:
        self.on_calls.append((selector, handler))

    def onDocument(self, handler: Any) -> None:
        self.document.append(handler)

    def transform(self, response: Any) -> Any:
        return MagicMock(status=200)


def test_a_page_s_handler_object_says_which_page_it_is_for(interop: Any) -> None:
    """What JsIO.rewrite hands HTMLRewriter: one handler object per page for its marked slots
    and its end, whose functions get the object itself (``this``: capture_this) and so know the
    page; the give-up timer gets the page's key as its argument."""
    from edge.delivery import DeliveryStats
    from edge.io import STREAM_WAIT_S, Page

    rewriter, timers = Rewriter(), []
    interop.HTMLRewriter.new = lambda: rewriter

    def set_timeout(function: Any, ms: int, *args: Any) -> int:
        timers.append((function, ms, args))
        return 1

    interop.setTimeout = set_timeout
    io = interop.JsIO(MagicMock(), types.SimpleNamespace(), Ctx(), DeliveryStats())
    fills = {'[data-edgepick-slot="hero"]': ("<b>hero</b>", "d-1", "hero")}
    page = Page(200, {"content-type": "text/html"}, MagicMock())
    done = asyncio.run(io.rewrite(page, fills, stream=True))
    [(selector, handler)] = rewriter.on_calls  # to_js is the identity here: a dict
    assert selector == "[data-edgepick-slot]" and rewriter.document == [handler]
    this = types.SimpleNamespace(**handler)
    hero, other = element("hero"), element("recs")
    handler["element"](this, hero)
    handler["element"](this, other)  # a slot this page did not decide: left alone
    hero.setAttribute.assert_called_once_with("data-edgepick-decision", "d-1")
    other.setInnerContent.assert_not_called()
    assert done.found == {"hero"}
    [(expire, ms, args)] = timers
    assert expire is interop._expire and ms == STREAM_WAIT_S * 1000 and args == (this.key,)
    told: list[bool] = []
    done.done.then(told.append)
    handler["end"](this, None)
    assert told == [True] and this.key not in interop._rewrites
    options = {f: o for f, o in sys.modules["pyodide.ffi"].made}
    assert options[interop._fill_marked] == options[interop._end] == {"capture_this": True}


def test_the_origin_s_timer_aborts_its_fetch_and_says_so(interop: Any) -> None:
    """The origin's timer is the isolate's one abort function, given the request's
    controller; a fetch it aborted is an ``OriginTimeout``, and the timer is always cleared."""
    from edge.io import OriginTimeout

    timers: list[tuple[Any, int, tuple[Any, ...]]] = []
    cleared: list[int] = []

    def set_timeout(function: Any, ms: int, *args: Any) -> int:
        timers.append((function, ms, args))
        return len(timers)

    interop.setTimeout, interop.clearTimeout = set_timeout, cleared.append
    controller = MagicMock()
    controller.signal.aborted = False

    class Aborted:
        def __await__(self) -> Any:
            [(abort, _ms, args)] = timers
            abort(*args)  # the time is up before any answer
            controller.abort.assert_called_once_with()
            controller.signal.aborted = True
            raise RuntimeError("AbortError")
            yield  # pragma: no cover - makes this a generator

    with pytest.raises(OriginTimeout, match="within 1500 ms"):
        asyncio.run(interop._within(Aborted(), 1500, controller))
    assert timers[0][0] is interop._function("abort") and timers[0][1:] == (1500, (controller,))
    assert cleared == [1]


def test_the_origin_gets_the_visitor_s_headers_changed_only_where_they_differ(
    interop: Any,
) -> None:
    """The origin's request headers start from a JS copy of the visitor's; only the names
    the request logic changed are written (the visitor's own text is not written back)."""
    from edge.delivery import DeliveryStats

    class Copied:
        def __init__(self, original: dict[str, str]) -> None:
            self.values, self.calls = dict(original), list[tuple[str, str]]()

        def delete(self, name: str) -> None:
            self.calls.append(("delete", name))
            del self.values[name]

        def set(self, name: str, value: str) -> None:
            self.calls.append(("set", name))
            self.values[name] = value

    visitor = {"cookie": "ep=1", "host": "shop", "x-edgepick-evil": "1", "accept": "text/html"}
    request = types.SimpleNamespace(headers=visitor)
    interop.Headers.new = Copied
    io = interop.JsIO(request, types.SimpleNamespace(), Ctx(), DeliveryStats(), dict(visitor))
    wanted = {"cookie": "ep=1", "accept": "text/html", "x-edgepick-hero": "v2"}
    copied = io._headers(wanted)
    assert copied.values == wanted
    assert sorted(copied.calls) == [
        ("delete", "host"),
        ("delete", "x-edgepick-evil"),
        ("set", "x-edgepick-hero"),
    ]
    unknown = interop.JsIO(request, types.SimpleNamespace(), Ctx(), DeliveryStats())
    assert unknown._headers(wanted) == wanted  # the request's headers not known: all of them
