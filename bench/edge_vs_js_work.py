"""The edgepick side of ``bench/edge_vs_js.mjs``, run inside Pyodide: ``decide()`` for a batch of
prepared visitors (states and request contexts built before timing, as the JS side's attribute
documents are), returning the variants for the agreement check. Pure (stdlib + ``core``)."""

from __future__ import annotations

import json
from typing import Any

from core.decide import decide
from core.engine import Engine
from core.features import RequestContext, VisitorState

NOW = 1_790_000_000
_prepared: dict[str, Any] = {}


def prepare(snapshot: bytes, visitors_json: str, slot: str) -> int:
    visitors = json.loads(visitors_json)
    _prepared["engine"] = Engine.from_bytes(bytes(snapshot))
    _prepared["slots"] = (slot,)
    _prepared["states"] = [VisitorState(v["id"], visits=v["visits"]) for v in visitors]
    _prepared["contexts"] = [
        RequestContext(
            path="/",
            device=v["device"],
            country=v["country"],
            referrer=v["referrer"],
            utm_source=v["utmSource"],
        )
        for v in visitors
    ]
    _prepared["nonces"] = [f"{i:016x}" for i in range(len(visitors))]
    return len(visitors)


def run(start: int, count: int) -> list[str]:
    """``decide()`` for visitors ``start .. start + count`` (wrapping around); their variants."""
    engine, slots = _prepared["engine"], _prepared["slots"]
    states, contexts, nonces = _prepared["states"], _prepared["contexts"], _prepared["nonces"]
    n = len(states)
    out = []
    for j in range(start, start + count):
        i = j % n
        out.append(decide(engine, states[i], contexts[i], NOW, slots, nonce=nonces[i])[0].variant)
    return out
