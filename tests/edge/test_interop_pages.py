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
    # a JS-callable Python function: bind() gives a new one with arguments bound
    ffi.create_proxy = lambda f: types.SimpleNamespace(  # type: ignore[attr-defined]
        bind=lambda _this, *bound: (f, bound)
    )
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
    loop = asyncio.new_event_loop()
    try:
        page = interop._Rewrite(loop.create_future(), 0)
        page.slots["hero"] = ("<b>hero</b>", "d-1")
        interop._rewrites[7] = page
        interop._expire(7)  # the wait is over: the events go with what was met
        assert page.done.result() is False
        late = element("hero")
        interop._fill_marked(7, late)  # ... but the page still streams: its slot is filled
        late.setInnerContent.assert_called_once()
        assert page.found == {"hero"}
        interop._end(7, None)  # the end, late: forgotten, resolved once only
        assert 7 not in interop._rewrites and page.done.result() is False
    finally:
        loop.close()


def test_pages_whose_end_never_comes_are_forgotten_not_resolved(interop: Any) -> None:
    loop = asyncio.new_event_loop()
    try:
        old = interop._Rewrite(loop.create_future(), 1_000)
        recent = interop._Rewrite(loop.create_future(), 1_000 + interop.FORGET_AFTER_MS)
        interop._rewrites.update({1: old, 2: recent})
        interop._sweep(2_001 + interop.FORGET_AFTER_MS)
        assert list(interop._rewrites) == [2]
        assert not old.done.done()  # never resolved from another request's context
    finally:
        loop.close()


def test_a_queue_that_refuses_a_streamed_page_s_batch_is_counted(interop: Any) -> None:
    from edge.delivery import DeliveryStats

    class Queue:
        async def send(self, body: str) -> None:
            raise RuntimeError("queue full")

    env = types.SimpleNamespace(EVENTS=Queue())
    stats = DeliveryStats()
    io = interop.JsIO(MagicMock(), env, MagicMock(), stats)
    asyncio.run(io.send("http://collector.test/v1/events", b'{"events":[]}', {}, 3))
    assert stats.dropped == 3 and stats.queued == 0 and "queue full" in stats.last_error


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
