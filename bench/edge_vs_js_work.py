"""The edgepick side of ``bench/edge_vs_js.mjs``, run inside Pyodide: ``decide()`` for a batch of
prepared visitors (states and request contexts built before timing, as the JS side's attribute
documents are), returning the variants for the agreement check. Pure (stdlib + ``core``)."""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from core.decide import Decision, decide
from core.engine import Engine
from core.features import RequestContext, VisitorState
from core.reason import Reason

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


def timed(start: int, count: int) -> int:
    """``run``, as the timed batches call it: the variants stay a Python list (as GrowthBook's
    values stay a JS array), so turning 200 strings into JS is not timed as ``decide()``'s."""
    return len(run(start, count))


def parts(rounds: int = 15) -> str:
    """Where ``decide()``'s time goes on this traffic, in microseconds per call (medians of
    ``rounds`` passes over every visitor): visitors served by a rule or the default, visitors
    the experiment draws for, the experiment's draw alone (GrowthBook's FNV-1a hash, version
    2, of the 16-hex id: ``core.hashing.seeded_hash``), and the least Python that serves a rule
    (the slot's fused audience function, its outcome, the decision joined from its parts)."""
    engine, slots = _prepared["engine"], _prepared["slots"]
    states, contexts, nonces = _prepared["states"], _prepared["contexts"], _prepared["nonces"]
    prepared = engine.slots[slots[0]]
    n = len(states)
    reasons = [decide(engine, states[i], contexts[i], NOW, slots)[0].reason for i in range(n)]
    drawn = [i for i in range(n) if reasons[i] in (Reason.POLICY, Reason.FALLBACK)]
    ruled = [i for i in range(n) if reasons[i] not in (Reason.POLICY, Reason.FALLBACK)]
    draw = prepared.policy.draw
    new = tuple.__new__

    def least(i: int) -> Any:
        targeted = prepared.outcomes[prepared.fused(states[i], contexts[i])]
        return new(Decision, targeted.head + (nonces[i] + prepared.suffix,) + targeted.tail)  # noqa: RUF005 (as core.decide)

    def per_call(indices: list[int], call: Any) -> float:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            for i in indices:
                call(i)
            times.append((time.perf_counter() - started) * 1e6 / len(indices))
        return round(statistics.median(times), 2)

    def decided(i: int) -> Any:
        return decide(engine, states[i], contexts[i], NOW, slots, nonce=nonces[i])

    return json.dumps(
        {
            "visitors_by_rule_or_default": len(ruled),
            "visitors_drawn_for": len(drawn),
            "decide_rule_or_default_us": per_call(ruled, decided),
            "decide_drawn_us": per_call(drawn, decided),
            "draw_alone_us": per_call(drawn, lambda i: draw(states[i].visitor_id)),
            "least_python_for_a_rule_us": per_call(ruled, least),
        }
    )
