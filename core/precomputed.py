"""Pre-computed decisions: a table of every slot's outcome for the most frequent visitor
contexts, served instead of targeting and scoring when the edge is under load.

What ``core.decide`` computes for a slot depends on the visitor only through:

- which of the audiences its rules and segments name match (the hit pattern of its compiled
  conditions on the attribute document, ``prepared.hits``), if the slot has rules or segments;
- the feature vector of a contextual policy (``policy.featurize``), and whether the visitor is
  new, if the policy has a cold start;
- the request path (which slots apply), and, for the draw, the visitor id.

The **context key** of a request is those inputs, exactly, as canonical JSON (``context_key``):
the segment a slot's rules put the visitor in, and the features its policy reads; two requests
with one key get the same rule outcomes and the same policy probabilities. An
**entry** holds, per slot, what ``decide`` gave that context before any draw: the reason, the
arm for rule and default outcomes, and for policy draws the whole distribution (probabilities,
scores, features, segment, eligible count, the explain steps). Serving an entry
(``decide_cached``) draws with the visitor's own uniform (``policy.draw(visitor)``) by inverse
CDF over the entry's cumulative probabilities, exactly as ``decide`` does, so the decision, its
propensity and its logged distribution are those the live path gives. The holdout, bots and
previews are never served from the table (``None``: decide live).

Table format (msgpack): ``["edgepick-precomputed", 1, snapshot_id, mode, {key: [slot entry,
...]}]``, ``mode`` saying when the edge serves it (``MODES``), with a slot entry ``[slot,
reason, arm, probabilities, features, scores, segment, eligible, steps]``. ``decode_table``
returns ``None`` for anything else and never raises.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from typing import Any

from core.decide import (
    Decision,
    applies,
    decide,
    fixed_decision,
    in_holdout,
    request_attributes,
)
from core.engine import Engine
from core.features import Featurizer, RequestContext, VisitorState, decayed_affinity
from core.hashing import short_id
from core.packing import finite, pack, unpack
from core.policies import pick
from core.reason import Reason

MAGIC, VERSION = "edgepick-precomputed", 1
# when the edge serves the table: "always" (any request whose context it holds), "budget:<us>"
# (only once the request has used that much CPU before deciding), "off"
MODES = ("always", "budget:", "off")
MAX_TABLE_BYTES = 16 * 1024 * 1024  # a KV value is at most 25 MiB
Entry = tuple[tuple[Any, ...], ...]  # one slot entry per decided slot
Table = dict[str, Entry]


def context_key(
    engine: Engine, state: VisitorState, context: RequestContext, now: int, slots: Sequence[str]
) -> tuple[Any, ...]:
    """The request's context key (module docstring): what ``decide`` reads of the visitor, as a
    tuple (``key_text`` writes it as JSON, ``key_from_text`` reads it back, exactly)."""
    prepared = []
    for n in slots:
        p = engine.slots.get(n)
        if p is not None and (not p.paths or applies(p.paths, context.path)):
            prepared.append(p)
    site = engine.site
    affinity: dict[str, float] | None = None
    parts: list[Any] = [tuple(p.slot.name for p in prepared)]
    if any(p.targeted for p in prepared):
        attrs, affinity = request_attributes(engine, state, context, now, None)
        parts.append(tuple(p.hits(attrs) if p.targeted else () for p in prepared))
    featurizers: list[Featurizer] = []
    for p in prepared:
        f = p.policy.featurize
        if f is not None and f not in featurizers:
            featurizers.append(f)
    if featurizers:
        if affinity is None:
            affinity = decayed_affinity(state, now, site.signals.half_life)
        parts.append(tuple(f(state, context, affinity, now) for f in featurizers))
    if any(p.policy.reads_history for p in prepared):
        parts.append(state.is_new)
    return tuple(parts)


def key_text(key: tuple[Any, ...]) -> str:
    """A context key as JSON (floats as their shortest exact repr): the table's wire form."""
    return json.dumps(key, separators=(",", ":"))


def key_from_text(text: str) -> tuple[Any, ...]:
    found = _tuples(json.loads(text))
    if not isinstance(found, tuple):
        raise ValueError("a context key is a JSON array")
    return found


def entry_for(
    engine: Engine, state: VisitorState, context: RequestContext, now: int, slots: Sequence[str]
) -> Entry:
    """What ``decide`` gives this context, before the draw (one slot entry per slot decided)."""
    out = []
    for d in decide(engine, state, context, now, slots):
        if d.reason not in (Reason.POLICY, Reason.FALLBACK, Reason.RULE, Reason.DEFAULT):
            raise ValueError(f"{d.slot}: a {d.reason} decision is not a context's (holdout?)")
        steps = tuple((t, tuple(args)) for t, args in d.steps)
        drawn = d.reason in (Reason.POLICY, Reason.FALLBACK)
        probs = d.probabilities if drawn else ()
        out.append(
            (
                d.slot,
                d.reason.value,
                d.arm,
                probs,
                d.features,
                d.scores,
                d.segment,
                d.eligible,
                steps,
            )
        )
    return tuple(out)


_new_tuple = tuple.__new__  # builds a Decision from its fields, as core.decide does
_FIXED = (Reason.RULE, Reason.DEFAULT)
Served = dict[tuple[Any, ...], tuple[tuple[Any, ...], ...]]


def serving(engine: Engine, table: Mapping[str, Entry]) -> Served:
    """The table made ready for ``decide_cached`` against ``engine``: keys as tuples, each slot
    entry with its variant ids, cumulative probabilities and draw function resolved once.
    Raises ``ValueError`` / ``KeyError`` for a table that does not fit the engine."""
    out: Served = {}
    for text, entry in table.items():
        slots: list[tuple[Any, ...]] = []
        for slot, reason, arm, probs, x, scores, segment, eligible, steps in entry:
            prepared = engine.slots[slot]
            why = Reason(reason)
            kind = prepared.policy.kind
            if why in _FIXED:
                if not 0 <= arm < len(prepared.ids):
                    raise ValueError(f"{slot}: no arm {arm}")
                fixed = fixed_decision(prepared, arm, why, "", steps)
                slots.append((prepared.suffix, None, tuple(fixed)))
                continue
            if len(probs) != len(prepared.ids):
                raise ValueError(f"{slot}: {len(probs)} probabilities for {len(prepared.ids)} arms")
            draw = prepared.policy.for_segment(segment).draw
            cumulative = tuple(accumulate(probs))
            fields = (slot, prepared.ids, probs, cumulative, why, kind, x, steps, scores, segment)
            slots.append((prepared.suffix, draw, (*fields, eligible)))
        out[key_from_text(text)] = tuple(slots)
    return out


def decide_cached(
    engine: Engine,
    served: Served,
    state: VisitorState,
    context: RequestContext,
    now: int,
    slots: Sequence[str],
    nonce: str = "",
) -> list[Decision] | None:
    """``decide(engine, state, context, now, slots, nonce=nonce)`` from the table, or ``None``
    when the request's context is not in it (or is the holdout's, a bot's: decide live)."""
    site = engine.site
    visitor = state.visitor_id
    if context.device == "bot" or (site.holdout > 0.0 and in_holdout(visitor, site.holdout)):
        return None
    entry = served.get(context_key(engine, state, context, now, slots))
    if entry is None:
        return None
    request_id = nonce or short_id(f"{visitor}\x1f{engine.snapshot_id}\x1f{now}")
    out = []
    for suffix, draw, fields in entry:
        if draw is None:  # a rule's or the default: the same decision for everyone
            out.append(_new_tuple(Decision, (*fields[:6], request_id + suffix, *fields[7:])))
            continue
        slot, ids, probs, cumulative, why, kind, x, steps, scores, segment, eligible = fields
        u = draw(visitor)
        i = bisect_right(cumulative, u)
        if i == len(probs):  # rounding left the total under u, as in core.decide
            i = pick(cumulative, u)
        did = request_id + suffix
        decision = (slot, ids[i], i, probs[i], why, kind, did, u, probs, x, steps, scores)
        out.append(_new_tuple(Decision, (*decision, segment, eligible)))
    return out


def build_table(
    engine: Engine,
    contexts: Iterable[tuple[VisitorState, RequestContext, int]],
    slots: Sequence[str],
    size: int,
) -> tuple[Table, dict[str, int]]:
    """The entries of the ``size`` most frequent context keys among ``contexts`` (recorded or
    simulated requests), and how often each key occurred (for the hit-rate estimate)."""
    counts: dict[str, int] = {}
    sample: dict[str, tuple[VisitorState, RequestContext, int]] = {}
    for state, context, now in contexts:
        key = key_text(context_key(engine, state, context, now, slots))
        counts[key] = counts.get(key, 0) + 1
        live_only = context.device == "bot" or in_holdout(state.visitor_id, engine.site.holdout)
        if key not in sample and not live_only:
            sample[key] = (state, context, now)
    ranked = sorted(sample, key=lambda k: (-counts[k], k))[:size]
    return {k: entry_for(engine, *sample[k], slots) for k in ranked}, counts


def mode_problem(mode: str) -> str | None:
    """Why a serving mode is invalid (``None``: valid)."""
    budget = mode.removeprefix("budget:")
    if mode in ("always", "off") or (budget != mode and budget.isdigit()):
        return None
    return f"mode: always, off or budget:<microseconds> (got {mode!r})"


def encode_table(snapshot_id: str, table: Mapping[str, Entry], mode: str = "always") -> bytes:
    if mode_problem(mode):
        raise ValueError(mode_problem(mode))
    flat = {k: [[*e[:8], [list(s) for s in e[8]]] for e in v] for k, v in table.items()}
    return pack([MAGIC, VERSION, snapshot_id, mode, flat])


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def decode_table(data: Any, snapshot_id: str) -> tuple[Table, str] | None:
    """The table in ``data`` and its mode, if it is one for ``snapshot_id``, else ``None``
    (never raises)."""
    try:
        if not isinstance(data, bytes | bytearray) or len(data) > MAX_TABLE_BYTES:
            return None
        items = unpack(bytes(data))
        if not (isinstance(items, list) and len(items) == 5 and items[:2] == [MAGIC, VERSION]):
            return None
        sid, mode, flat = items[2:]
        if sid != snapshot_id or not isinstance(mode, str) or mode_problem(mode):
            return None
        if not isinstance(flat, dict):
            return None
        table: Table = {}
        for key, slots in flat.items():
            key_from_text(key)
            table[key] = tuple(_slot_entry(e) for e in slots)
        return table, mode
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        return None
    except Exception:  # msgpack raises many unrelated types for garbage
        return None


def _slot_entry(e: Any) -> tuple[Any, ...]:
    slot, reason, arm, probs, x, scores, segment, eligible, steps = e
    Reason(reason)
    if not all(finite(p) for p in (*probs, *x, *scores)) or type(arm) is not int:
        raise ValueError("not finite")
    steps = tuple((t, _tuples(a)) for t, a in steps)
    return (slot, reason, arm, tuple(probs), tuple(x), tuple(scores), segment, eligible, steps)
