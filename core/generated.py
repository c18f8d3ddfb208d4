"""Generated Python source, compiled and registered so tracebacks and ``inspect.getsource``
show it: the engine generates its attribute builders and audience predicates once per
snapshot (``core.features``, ``core.predicates``) and the request path runs the result.

Each source is registered in ``linecache`` (an in-memory table of the standard library, no I/O)
under a name carrying a digest of its text, ``<edgepick KIND DIGEST>``: the same source is
registered once however often it is compiled, and two sources never share a name. At most
``MAX_REGISTERED`` sources stay registered (a long-lived origin process compiles many
snapshots): past that, the oldest registration is dropped (its code still runs; a traceback
through it shows no source line).
"""

from __future__ import annotations

import linecache
from hashlib import blake2b
from typing import Any

MAX_REGISTERED = 512
_registered: dict[str, None] = {}  # the names this module registered, oldest first


def run(source: str, kind: str, namespace: dict[str, Any]) -> None:
    """Compile ``source`` and execute it into ``namespace``, registered under ``kind``; a
    syntax error propagates as ``compile`` raises it."""
    name = f"<edgepick {kind} {blake2b(source.encode(), digest_size=6).hexdigest()}>"
    code = compile(source, name, "exec")
    if name not in _registered:
        if len(_registered) >= MAX_REGISTERED:
            oldest = next(iter(_registered))
            del _registered[oldest]
            linecache.cache.pop(oldest, None)
        _registered[name] = None
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    exec(code, namespace)
