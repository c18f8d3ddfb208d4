"""``decide()``: rules first, then the slot's policy, with exact propensities.

For each requested slot, in order:

1. preview override -> that variant (reason ``preview``, propensity 1);
2. holdout: visitors whose draw ``unit_draw(visitor, "edgepick-holdout", 0) < holdout`` get the
   default on every slot (reason ``holdout``), so personalization's lift can be measured;
3. audience rules, in order: a matching ``force`` rule serves its variant (reason ``rule``);
   matching ``restrict``/``exclude`` rules narrow the active variants;
4. nothing eligible -> the default (reason ``default``);
5. the policy gives probabilities over the eligible variants and a uniform draw derived from
   (visitor, slot, epoch) picks one by inverse CDF (reason ``policy``, or ``fallback`` when a
   linear policy serves a visitor with no history from its population allocation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, NamedTuple

from core.engine import Engine, PreparedSlot
from core.features import RequestContext, VisitorState, decayed_affinity, vector
from core.hashing import short_id, unit_draw
from core.policies import PreparedThompson, pick

HOLDOUT_SEED = "edgepick-holdout"

_COLD = " (cold start: population allocation)"

Step = tuple[str, tuple[Any, ...]]  # a format string and its arguments, rendered on demand


class Reason(StrEnum):
    PREVIEW = "preview"
    HOLDOUT = "holdout"
    RULE = "rule"
    DEFAULT = "default"
    POLICY = "policy"
    FALLBACK = "fallback"
    CACHED = "cached"  # reused from this session (the edge's response caching)


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

    @property
    def trail(self) -> tuple[str, ...]:
        """The explain trail: what happened, step by step, in words."""
        return tuple(template.format(*args) for template, args in self.steps)


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
    visitor_id = state.visitor_id
    affinity: dict[str, float] | None = None
    attrs: dict[str, Any] | None = None
    matched: dict[str, bool] = {}
    held_out = site.holdout > 0.0 and in_holdout(visitor_id, site.holdout)
    vectors: dict[int, tuple[float, ...]] = {}
    # a caller's random request id (the edge's) names the decisions as it is; without one they
    # are named by a hash of their inputs, so replaying a decision gives the same id
    request_id = nonce or short_id(f"{visitor_id}\x1f{engine.snapshot_id}\x1f{now}")
    out: list[Decision] = []
    for name in engine.slots if slots is None else slots:
        prepared = engine.slots.get(name)
        if prepared is None or (
            prepared.slot.paths and not applies(prepared.slot.paths, context.path)
        ):
            continue
        decision_id = f"{request_id}-{prepared.position}"
        override = overrides.get(name) if overrides else None
        if override is not None and override in prepared.index_of:
            step: Step = ("preview forces {}", (override,))
            out.append(
                _fixed(prepared, prepared.index_of[override], Reason.PREVIEW, decision_id, (step,))
            )
            continue
        if held_out:
            step = ("visitor in the {:.0%} holdout: default", (site.holdout,))
            out.append(_fixed(prepared, prepared.default, Reason.HOLDOUT, decision_id, (step,)))
            continue
        steps: list[Step] = []
        eligible: Sequence[int] = prepared.active
        forced = -1
        if prepared.rules:
            if attrs is None:
                attrs, affinity = _attributes(engine, state, context, now, affinity)
            forced, eligible = apply_rules(engine, prepared, attrs, matched, steps)
        if forced >= 0:
            out.append(_fixed(prepared, forced, Reason.RULE, decision_id, tuple(steps)))
            continue
        if not eligible:
            steps.append(("no eligible variant: default", ()))
            out.append(
                _fixed(prepared, prepared.default, Reason.DEFAULT, decision_id, tuple(steps))
            )
            continue
        policy = prepared.policy
        x: tuple[float, ...] = ()
        if policy.extractors:
            key = id(policy.extractors)
            cached = vectors.get(key)
            if cached is None:
                if affinity is None:
                    affinity = decayed_affinity(state, now, site.signals.half_life)
                cached = vectors[key] = vector(policy.extractors, state, context, affinity, now)
            x = cached
        segment = ""
        if isinstance(policy, PreparedThompson) and policy.segments:
            if attrs is None:
                attrs, affinity = _attributes(engine, state, context, now, affinity)
            segment = _segment(engine, policy.segments, attrs, matched)
        if segment:
            steps.append(("allocation of segment {}", (segment,)))
        scored = policy.for_segment(segment).score(eligible, x, state.is_new)
        u = policy.draw(visitor_id)
        probs = scored.probabilities
        i = pick(scored.cumulative, u)
        steps.append(
            (
                "{} over {} eligible{}, draw {:.4f} -> {} (p={:.4f})",
                (
                    policy.kind,
                    len(eligible),
                    _COLD if scored.fallback else "",
                    u,
                    prepared.ids[i],
                    probs[i],
                ),
            )
        )
        out.append(
            Decision(
                name,
                prepared.ids[i],
                i,
                probs[i],
                Reason.FALLBACK if scored.fallback else Reason.POLICY,
                policy.kind,
                f"{request_id}-{prepared.position}",
                u,
                probs,
                x,
                tuple(steps),
                scored.scores,
                segment,
            )
        )
    return out


def _attributes(
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


def _segment(
    engine: Engine, segments: tuple[str, ...], attrs: Mapping[str, Any], matched: dict[str, bool]
) -> str:
    """The first of a Thompson slot's segments (audiences) the visitor is in, or ""."""
    for name in segments:
        if _in_audience(engine, name, attrs, matched):
            return name
    return ""


def _in_audience(
    engine: Engine, name: str, attrs: Mapping[str, Any], matched: dict[str, bool]
) -> bool:
    """Whether the visitor is in the audience, evaluated once per request (``matched``)."""
    hit = matched.get(name)
    if hit is None:
        predicate = engine.audiences.get(name)
        hit = matched[name] = bool(predicate and predicate(attrs))
    return hit


def apply_rules(
    engine: Engine,
    prepared: PreparedSlot,
    attrs: Mapping[str, Any],
    matched: dict[str, bool],
    steps: list[Step],
) -> tuple[int, Sequence[int]]:
    """The slot's audience rules, in order: (the forced arm or -1, the eligible arms).

    ``matched`` memoizes audiences across the slots of one request; ``steps`` gets the trail.
    """
    eligible: Sequence[int] = prepared.active
    for rule in prepared.rules:
        if not _in_audience(engine, rule.audience, attrs, matched):
            continue
        if rule.force:
            steps.append(("audience {} forces {}", (rule.audience, prepared.ids[rule.first])))
            return rule.first, eligible
        if eligible is prepared.active:  # the common case, narrowed once at prepare time
            eligible = rule.from_active
        else:
            members, keep = rule.indices, rule.restrict
            eligible = [i for i in eligible if (i in members) == keep]
        steps.append(("audience {} {} to {}", (rule.audience, rule.verb, len(eligible))))
    return -1, eligible


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
    attrs = _attributes(engine, state, context, now, None)[0]
    matched: dict[str, bool] = {}
    allowed = set()
    for name, variant in chosen.items():
        prepared = engine.slots.get(name)
        if prepared is None or variant not in prepared.index_of:
            continue
        arm = prepared.index_of[variant]
        forced, eligible = apply_rules(engine, prepared, attrs, matched, [])
        if forced == arm or (forced < 0 and arm in eligible):
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


def _fixed(
    prepared: PreparedSlot, index: int, reason: Reason, decision_id: str, steps: tuple[Step, ...]
) -> Decision:
    return Decision(
        prepared.slot.name,
        prepared.ids[index],
        index,
        1.0,
        reason,
        prepared.policy.kind,
        decision_id,
        0.0,
        prepared.certain[index],
        (),
        steps,
    )
