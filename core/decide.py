"""``decide()``: rules first, then the slot's policy, with exact propensities.

For each requested slot, in order:

1. preview override -> that variant (reason ``preview``, propensity 1);
2. holdout: visitors whose ``gbhash("edgepick-holdout", visitor, 2) < holdout`` get the default
   on every slot (reason ``holdout``), so personalization's lift can be measured against them;
3. audience rules, in order: a matching ``force`` rule serves its variant (reason ``rule``);
   matching ``restrict``/``exclude`` rules narrow the active variants;
4. nothing eligible -> the default (reason ``default``);
5. the policy gives probabilities over the eligible variants and a uniform draw derived from
   (visitor, slot, epoch) picks one by inverse CDF (reason ``policy``, or ``fallback`` when a
   linear policy serves a visitor with no history from its population allocation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from core.engine import Engine, PreparedSlot
from core.features import RequestContext, VisitorState, attributes, vector
from core.hashing import gbhash, short_id, unit_draw
from core.model import RuleAction
from core.policies import PreparedFixed, PreparedLinear, pick

HOLDOUT_SEED = "edgepick-holdout"


class Reason(StrEnum):
    PREVIEW = "preview"
    HOLDOUT = "holdout"
    RULE = "rule"
    DEFAULT = "default"
    POLICY = "policy"
    FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class Decision:
    slot: str
    variant: str
    index: int
    propensity: float
    reason: Reason
    policy: str
    decision_id: str
    draw: float
    probabilities: tuple[float, ...]
    features: tuple[float, ...]
    trail: tuple[str, ...]
    scores: tuple[float, ...] = ()


def in_holdout(visitor_id: str, share: float) -> bool:
    if share <= 0.0:
        return False
    n = gbhash(HOLDOUT_SEED, visitor_id, 2)
    return n is not None and n < share


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
    """Decide every requested slot (all slots when ``slots`` is None); unknown names are skipped."""
    site = engine.site
    attrs = attributes(state, context, now, site.signals)
    affinity = attrs["affinity"]
    matched: dict[str, bool] = {}
    held_out = in_holdout(state.visitor_id, site.holdout)
    vectors: dict[int, tuple[float, ...]] = {}
    out: list[Decision] = []
    for name in engine.slots if slots is None else slots:
        prepared = engine.slots.get(name)
        if prepared is None or not _applies(prepared.slot.paths, context.path):
            continue
        decision_id = short_id(state.visitor_id, name, engine.snapshot_id, str(now), nonce)
        override = overrides.get(name) if overrides else None
        if override is not None and override in prepared.index_of:
            i = prepared.index_of[override]
            out.append(
                _fixed(prepared, i, Reason.PREVIEW, decision_id, (f"preview forces {override}",))
            )
            continue
        if held_out:
            trail = (f"visitor in the {site.holdout:.0%} holdout: default",)
            out.append(_fixed(prepared, prepared.default, Reason.HOLDOUT, decision_id, trail))
            continue
        trail_list: list[str] = []
        eligible: Sequence[int] = prepared.active
        forced = -1
        for rule in prepared.rules:
            hit = matched.get(rule.audience)
            if hit is None:
                predicate = engine.audiences.get(rule.audience)
                hit = matched[rule.audience] = bool(predicate and predicate(attrs))
            if not hit:
                continue
            if rule.action is RuleAction.FORCE:
                forced = rule.first
                trail_list.append(f"audience {rule.audience} forces {prepared.ids[forced]}")
                break
            if rule.action is RuleAction.RESTRICT:
                eligible = [i for i in eligible if i in rule.indices]
            else:
                eligible = [i for i in eligible if i not in rule.indices]
            trail_list.append(f"audience {rule.audience} {rule.action.value}s to {len(eligible)}")
        if forced >= 0:
            out.append(_fixed(prepared, forced, Reason.RULE, decision_id, tuple(trail_list)))
            continue
        if not eligible:
            trail_list.append("no eligible variant: default")
            out.append(
                _fixed(prepared, prepared.default, Reason.DEFAULT, decision_id, tuple(trail_list))
            )
            continue
        policy = prepared.policy
        x: tuple[float, ...] = ()
        if policy.extractors:
            key = id(policy.extractors)
            x = vectors.get(key) or vector(policy.extractors, state, context, affinity, now)
            vectors[key] = x
        new_visitor = state.is_new
        scored = policy.score(eligible, x, new_visitor)
        if isinstance(policy, PreparedFixed):
            u = gbhash(policy.seed or f"{name}:{site.epoch}", state.visitor_id, 2) or 0.0
        else:
            u = unit_draw(state.visitor_id, name, site.epoch)
        probs = scored.probabilities
        i = pick(probs, u)
        fallback = isinstance(policy, PreparedLinear) and new_visitor and bool(policy.cold_start)
        reason = Reason.FALLBACK if fallback else Reason.POLICY
        trail_list.append(
            f"{policy.kind} over {len(eligible)} eligible"
            f"{' (cold start: population allocation)' if fallback else ''}"
            f", draw {u:.4f} -> {prepared.ids[i]} (p={probs[i]:.4f})"
        )
        out.append(
            Decision(
                name,
                prepared.ids[i],
                i,
                probs[i],
                reason,
                policy.kind,
                decision_id,
                u,
                tuple(probs),
                x,
                tuple(trail_list),
                scored.scores,
            )
        )
    return out


def _applies(paths: tuple[str, ...], path: str) -> bool:
    """A slot with path prefixes applies only where one matches; "/" matches the root only."""
    if not paths:
        return True
    return any(path == p if p == "/" else path.startswith(p) for p in paths)


def _fixed(
    prepared: PreparedSlot, index: int, reason: Reason, decision_id: str, trail: tuple[str, ...]
) -> Decision:
    probs = [0.0] * len(prepared.ids)
    probs[index] = 1.0
    return Decision(
        prepared.slot.name,
        prepared.ids[index],
        index,
        1.0,
        reason,
        prepared.policy.kind,
        decision_id,
        0.0,
        tuple(probs),
        (),
        trail,
    )
