"""Generated Python source, compiled and registered so tracebacks and ``inspect.getsource``
show it: the engine generates its attribute builders and audience predicates once per
snapshot (``core.features``, ``core.predicates``) and the request path runs the result.

Each source is registered in ``linecache`` (an in-memory table of the standard library, no I/O)
under a name carrying a digest of its text, ``<edgepick KIND DIGEST>``: the same source is
registered once however often it is compiled, and two sources never share a name.
"""

from __future__ import annotations

import linecache
from hashlib import blake2b
from typing import Any


def run(source: str, kind: str, namespace: dict[str, Any]) -> None:
    """Compile ``source`` and execute it into ``namespace``, registered under ``kind``; a
    syntax error propagates as ``compile`` raises it."""
    name = f"<edgepick {kind} {blake2b(source.encode(), digest_size=6).hexdigest()}>"
    code = compile(source, name, "exec")
    if name not in linecache.cache:
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    exec(code, namespace)
