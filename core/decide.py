"""``decide()``: rules first, then the slot's policy, with exact propensities.

For each requested slot, in order:

1. preview override -> that variant (reason ``preview``, propensity 1);
2. holdout: visitors whose draw ``unit_draw(visitor, "edgepick-holdout", 0) < holdout`` get the
   default on every slot (reason ``holdout``), so personalization's lift can be measured; bots
   and tools (``context.device == "bot"``) get the defaults too (reason ``default``): crawlers
   index the site's own content and never steer or pollute learning;
3. audience rules, in order: a matching ``force`` rule serves its variant (reason ``rule``);
   matching ``restrict``/``exclude`` rules narrow the active variants;
4. nothing eligible -> the default (reason ``default``);
5. the policy gives probabilities over the eligible variants and a uniform draw derived from
   (visitor, slot, epoch) picks one by inverse CDF (reason ``policy``, or ``fallback`` when a
   linear policy serves a visitor with no history from its population allocation).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from core.engine import Engine, PreparedSlot
from core.features import Featurizer, RequestContext, VisitorState, decayed_affinity
from core.hashing import short_id, unit_draw
from core.policies import pick
from core.reason import Reason
from core.targeting import Step, fixed_fields, outcome, target

HOLDOUT_SEED = "edgepick-holdout"

_COLD = " (cold start: population allocation)"
_POLICY_STEP = "{} over {} eligible{}, draw {:.4f} -> {} (p={:.4f})"


class Decision(NamedTuple):
    """One slot's decision (a named tuple: built on every request, so cheap to construct)."""

    slot: str
    variant: str
    arm: int  # the variant's position in the slot
    propensity: float
    reason: Reason
    policy: str
    decision_id: str
    draw: float
    probabilities: tuple[float, ...]
    features: tuple[float, ...]
    steps: tuple[Step, ...]
    scores: tuple[float, ...] = ()
    segment: str = ""  # the audience whose own allocation was used ("" for the slot's)
    eligible: int = 0  # how many variants the policy chose among

    @property
    def trail(self) -> tuple[str, ...]:
        """The explain trail: what happened, step by step, in words (the policy's step last,
        written from the decision's own fields)."""
        lines = [template.format(*args) for template, args in self.steps]
        if self.reason in _BY_POLICY:
            cold = _COLD if self.reason is Reason.FALLBACK else ""
            args = (self.policy, self.eligible, cold, self.draw, self.variant, self.propensity)
            lines.append(_POLICY_STEP.format(*args))
        return tuple(lines)


# builds a Decision from all its fields in order, without the named tuple's Python ``__new__``
_new_tuple = tuple.__new__
# the reasons as plain module constants: an enum member lookup costs a Python call on 3.11
_PREVIEW, _HOLDOUT, _RULE, _DEFAULT = Reason.PREVIEW, Reason.HOLDOUT, Reason.RULE, Reason.DEFAULT
_BY_POLICY = (Reason.POLICY, Reason.FALLBACK)  # [scored.fallback]


def in_holdout(visitor_id: str, share: float) -> bool:
    """Whether the visitor is in the site's holdout: a draw independent of every slot's draw."""
    return share > 0.0 and unit_draw(visitor_id, HOLDOUT_SEED, 0) < share


def decide(
    engine: Engine,
    state: VisitorState,
    context: RequestContext,
    now: int,
    slots: Iterable[str] | None = None,
    *,
    nonce: str = "",
    overrides: Mapping[str, str] | None = None,
) -> list[Decision]:
    """Decide every requested slot (all slots when ``slots`` is None); unknown names are skipped.

    ``nonce``: a unique request id (e.g. 128 random bits) that names this request's decisions
    ``<nonce>-<slot position>``; by default they are named by a hash of (visitor, snapshot, now).
    """
    site = engine.site
    holdout = site.holdout
    held_out = bot = False
    # each slot asks _special first when any of these holds (rarely: one test, then none)
    special = bool(overrides) or context.device == "bot" or holdout > 0.0
    if special:
        held_out = holdout > 0.0 and in_holdout(state.visitor_id, holdout)
        bot = context.device == "bot"  # bots and tools: the defaults, like the holdout
        special = held_out or bot or bool(overrides)
    plain = not context.extra  # no extra attributes: fused audience functions apply
    affinity: dict[str, float] | None = None
    attrs: dict[str, Any] | None = None
    vectors: dict[Featurizer, tuple[float, ...]] | None = None
    # a caller's random request id (the edge's) names the decisions as it is; without one they
    # are named by a hash of their inputs, so replaying a decision gives the same id
    request_id = nonce or short_id(f"{state.visitor_id}\x1f{engine.snapshot_id}\x1f{now}")
    prepared_slots = engine.slots
    out: list[Decision] = []
    for name in prepared_slots if slots is None else slots:
        prepared = prepared_slots.get(name)
        if prepared is None or (prepared.paths and not applies(prepared.paths, context.path)):
            continue
        decision_id = request_id + prepared.suffix
        if special:
            fixed = _special(prepared, decision_id, overrides, held_out, bot, holdout)
            if fixed is not None:
                out.append(fixed)
                continue
        if prepared.targeted:  # core.targeting.target, inlined: a call less per slot
            fused = prepared.fused
            if fused is not None and plain:  # audiences of plain fields: no attribute document
                hits = fused(state, context)
            else:
                if attrs is None:  # request_attributes, inlined: 909 fewer instructions
                    if affinity is None and engine.reads_affinity:
                        affinity = decayed_affinity(state, now, site.signals.half_life)
                    signals = site.signals
                    attrs = engine.build_attributes(state, context, now, signals, affinity or {})
                hits = prepared.hits(attrs)
            targeted = prepared.outcomes.get(hits) or outcome(prepared, hits)
        else:
            targeted = prepared.untargeted
        head = targeted.head
        if head:  # a rule's or the default's: made when the outcome was first seen
            out.append(_new_tuple(Decision, head + (decision_id,) + targeted.tail))  # noqa: RUF005
            continue
        policy, scored = targeted.policy, targeted.scored
        x: tuple[float, ...] = ()
        if scored is None:  # a contextual policy: scored on this visitor's features
            featurize = policy.featurize
            if featurize is not None:  # one vector per feature list and request
                if vectors is None:
                    vectors = {}
                cached = vectors.get(featurize)
                if cached is None:
                    if affinity is None:
                        affinity = decayed_affinity(state, now, site.signals.half_life)
                    cached = vectors[featurize] = featurize(state, context, affinity, now)
                x = cached
            reads = policy.reads_history and state.is_new
            scored = policy.score(targeted.eligible, x, reads)
        u = policy.draw(state.visitor_id)
        probs = scored.probabilities
        i = bisect_right(scored.cumulative, u)
        if i == len(probs):  # rounding left the total under u: pick() knows what to do
            i = pick(scored.cumulative, u)
        out.append(
            _new_tuple(
                Decision,
                (
                    name,
                    prepared.ids[i],
                    i,
                    probs[i],
                    _BY_POLICY[scored.fallback],
                    prepared.policy.kind,  # the slot's (a segment's allocation is the same kind)
                    decision_id,
                    u,
                    probs,
                    x,
                    targeted.steps,
                    scored.scores,
                    targeted.segment,
                    len(targeted.eligible),
                ),
            )
        )
    return out


def _special(
    prepared: PreparedSlot,
    decision_id: str,
    overrides: Mapping[str, str] | None,
    held_out: bool,
    bot: bool,
    holdout: float,
) -> Decision | None:
    """A preview's forced variant, the holdout's default or a bot's default (steps 1-2 of the
    module docstring); None when none applies to this slot."""
    name = prepared.slot.name
    if overrides and overrides.get(name) in prepared.index_of:
        step: Step = ("preview forces {}", (overrides[name],))
        return fixed_decision(
            prepared, prepared.index_of[overrides[name]], _PREVIEW, decision_id, (step,)
        )
    if held_out:
        step = ("visitor in the {:.0%} holdout: default", (holdout,))
        return fixed_decision(prepared, prepared.default, _HOLDOUT, decision_id, (step,))
    if bot:
        step = ("a bot or tool: default (crawlers see the site's own content)", ())
        return fixed_decision(prepared, prepared.default, _DEFAULT, decision_id, (step,))
    return None


def request_attributes(
    engine: Engine,
    state: VisitorState,
    context: RequestContext,
    now: int,
    affinity: dict[str, float] | None,
) -> tuple[dict[str, Any], dict[str, float] | None]:
    """The request's attribute document, and the decayed affinity if it had to compute it."""
    signals = engine.site.signals
    if affinity is None and engine.reads_affinity:
        affinity = decayed_affinity(state, now, signals.half_life)
    return engine.build_attributes(state, context, now, signals, affinity or {}), affinity


def still_allowed(
    engine: Engine,
    state: VisitorState,
    context: RequestContext,
    now: int,
    chosen: Mapping[str, str],
) -> set[str]:
    """The slots whose earlier choice (slot -> variant) the rules still allow for this request.

    Reused session decisions go through this first: a rule that now forces another variant or
    excludes this one (a compliance rule for the visitor's country, say) wins over the cache.
    """
    attrs = request_attributes(engine, state, context, now, None)[0]
    allowed = set()
    for name, variant in chosen.items():
        prepared = engine.slots.get(name)
        if prepared is None or variant not in prepared.index_of:
            continue
        arm = prepared.index_of[variant]
        targeted = target(prepared, attrs) if prepared.targeted else prepared.untargeted
        if targeted.forced == arm or (targeted.forced < 0 and arm in targeted.eligible):
            allowed.add(name)
    return allowed


def applies(paths: tuple[str, ...], path: str) -> bool:
    """Whether a slot with these path prefixes applies to ``path`` (no prefixes: everywhere).

    Prefixes match whole path segments: ``/spring`` matches ``/spring`` and ``/spring/x`` but not
    ``/springfield``; ``/`` matches the root only.
    """
    if not paths:
        return True
    for prefix in paths:
        if path == prefix or (prefix != "/" and path.startswith(prefix.rstrip("/") + "/")):
            return True
    return False


def fixed_decision(
    prepared: PreparedSlot,
    index: int,
    reason: Reason,
    decision_id: str,
    steps: tuple[Step, ...],
    propensity: float = 1.0,
) -> Decision:
    """A decision no draw made (preview, holdout, rule, default; the edge's reused ones)."""
    head, tail = fixed_fields(
        prepared.slot.name,
        prepared.ids[index],
        index,
        reason,
        prepared.policy.kind,
        prepared.certain[index],
        steps,
        propensity,
    )
    return _new_tuple(Decision, head + (decision_id,) + tail)  # noqa: RUF005 (faster)
