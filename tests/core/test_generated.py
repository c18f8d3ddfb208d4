"""Generated source is registered so tracebacks and ``inspect`` show it, within a bound."""

from __future__ import annotations

import inspect
import linecache
import traceback
from typing import Any

from core import generated


def test_generated_functions_show_their_source_in_inspect_and_tracebacks() -> None:
    namespace: dict[str, Any] = {}
    generated.run("def boom(a):\n    return 1 // a\n", "test", namespace)
    assert inspect.getsource(namespace["boom"]) == "def boom(a):\n    return 1 // a\n"
    try:
        namespace["boom"](0)
    except ZeroDivisionError:
        text = traceback.format_exc()
    assert "<edgepick test " in text and "return 1 // a" in text
    linecache.checkcache()  # what traceback printing calls: registered entries survive it
    assert inspect.getsource(namespace["boom"]).startswith("def boom")


def test_registrations_are_bounded_and_the_same_source_is_registered_once() -> None:
    before = len(linecache.cache)
    for _ in range(3):
        generated.run("def same():\n    return 1\n", "test", {})
    assert len(linecache.cache) <= before + 1
    names = []
    for i in range(generated.MAX_REGISTERED + 10):
        namespace: dict[str, Any] = {}
        generated.run(f"def f{i}():\n    return {i}\n", "test", namespace)
        names.append(namespace[f"f{i}"].__code__.co_filename)
    assert names[0] not in linecache.cache and names[-1] in linecache.cache
    ours = [n for n in linecache.cache if n.startswith("<edgepick ")]
    assert len(ours) <= generated.MAX_REGISTERED
    namespace = {}
    generated.run("def f0():\n    return 0\n", "test", namespace)  # dropped, then compiled again
    assert inspect.getsource(namespace["f0"]) == "def f0():\n    return 0\n"
