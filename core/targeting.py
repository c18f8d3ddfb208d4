"""A slot's targeting: what its audience rules and segments make of one request.

The engine generates, per slot, one function that evaluates every audience the slot's rules and
segments name and returns the hits as a tuple of booleans (``core.predicates``). Everything that
follows (a forced variant, the eligible set, the segment whose allocation is used, the explain
steps, and for a policy whose probabilities depend on the eligible set alone, those
probabilities) depends on that hit pattern alone, so it is worked out once per pattern and kept:
a slot with ``r`` rules and ``s`` segments has at most ``2^(r+s)`` patterns, a handful in
practice. A slot with neither has one outcome, worked out when the engine is prepared.

Rules apply in order: a matching ``force`` rule serves its variant; a matching ``restrict`` rule
keeps only its variants, ``exclude`` drops them. Then the first matching segment, if any.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from core.model import Slot
from core.policies import PreparedPolicy, Scored
from core.predicates import FusedHits, Hits
from core.reason import Reason

Step = tuple[str, tuple[Any, ...]]  # a format string and its arguments, rendered on demand

MAX_PATTERNS = 256  # outcomes kept per slot; beyond that they are worked out on each request


class Targeted(NamedTuple):
    forced: int  # the arm a force rule serves, or -1
    eligible: tuple[int, ...]  # empty: nothing left, the default is served
    segment: str  # the first matching segment ("" for none)
    steps: tuple[Step, ...]  # the explain trail so far
    policy: PreparedPolicy  # the slot's policy, or its segment's
    scored: Scored | None  # the policy's probabilities over ``eligible`` if context-free
    # a rule's or the default's decision made up front (``fixed_outcome``): its fields before
    # and after the decision id, empty when the policy draws
    head: tuple[Any, ...] = ()
    tail: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class PreparedRule:
    audience: str
    force: bool  # serve ``first``
    restrict: bool  # keep only ``indices`` (else: drop them)
    verb: str  # for the explain trail
    indices: frozenset[int]
    first: int


class OneHot:
    """``[i]``: the distribution that always serves variant ``i`` of ``size``, made on first
    use and kept (all of them up front would be ``size^2`` numbers: 10,000 variants, 10^8)."""

    __slots__ = ("made", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.made: dict[int, tuple[float, ...]] = {}

    def __getitem__(self, index: int) -> tuple[float, ...]:
        found = self.made.get(index)
        if found is None:
            if not 0 <= index < self.size:
                raise IndexError(index)
            vector = [0.0] * self.size
            vector[index] = 1.0
            found = self.made[index] = tuple(vector)
        return found


@dataclass(frozen=True, slots=True)
class PreparedSlot:
    slot: Slot
    ids: tuple[str, ...]
    index_of: dict[str, int]
    default: int
    active: tuple[int, ...]
    rules: tuple[PreparedRule, ...]
    policy: PreparedPolicy
    position: int  # the slot's index in the site: part of its decision ids
    suffix: str  # "-<position>": a decision id is the request id and this
    paths: tuple[str, ...]  # the slot's path prefixes (none: every page)
    certain: OneHot  # [i]: the distribution that always serves variant i
    targeted: bool  # has rules or segments: ``hits`` is worth calling
    hits: Hits  # the hits of the rules' audiences, then the segments' (core.targeting)
    outcomes: dict[tuple[bool, ...], Targeted]  # hit pattern -> outcome, filled as they occur
    untargeted: Targeted  # the outcome when no audience matches (a slot's only one, if untargeted)
    # ``hits`` read straight from the state and context (core.predicates.compile_fused_hits),
    # when every audience reads plain fields only: for requests without extra attributes
    fused: FusedHits | None = None


def target(prepared: PreparedSlot, attrs: Mapping[str, Any]) -> Targeted:
    """The slot's targeting outcome for this attribute document."""
    return outcome(prepared, prepared.hits(attrs))


def outcome(prepared: PreparedSlot, hits: tuple[bool, ...]) -> Targeted:
    """The slot's targeting outcome for this hit pattern (worked out once, then kept)."""
    known = prepared.outcomes.get(hits)
    if known is None:
        known = resolve(prepared.rules, prepared.ids, prepared.active, prepared.policy, hits)
        known = fixed_outcome(
            known, prepared.slot.name, prepared.ids, prepared.default, prepared.certain
        )
        if len(prepared.outcomes) < MAX_PATTERNS:
            prepared.outcomes[hits] = known
    return known


def resolve(
    rules: tuple[PreparedRule, ...],
    ids: tuple[str, ...],
    active: tuple[int, ...],
    policy: PreparedPolicy,
    hits: tuple[bool, ...],
) -> Targeted:
    """The outcome of one hit pattern: rule hits in rule order, then segment hits."""
    steps: list[Step] = []
    eligible = active
    for rule, hit in zip(rules, hits, strict=False):
        if not hit:
            continue
        if rule.force:
            steps.append(("audience {} forces {}", (rule.audience, ids[rule.first])))
            return Targeted(rule.first, eligible, "", tuple(steps), policy, None)
        eligible = tuple(i for i in eligible if (i in rule.indices) == rule.restrict)
        steps.append(("audience {} {} to {}", (rule.audience, rule.verb, len(eligible))))
    if not eligible:
        steps.append(("no eligible variant: default", ()))
        return Targeted(-1, (), "", tuple(steps), policy, None)
    segment_hits = hits[len(rules) :]
    segment = next((s for s, hit in zip(policy.segments, segment_hits, strict=False) if hit), "")
    if segment:
        steps.append(("allocation of segment {}", (segment,)))
        policy = policy.for_segment(segment)
    scored = policy.score(eligible, (), False) if policy.context_free else None
    return Targeted(-1, eligible, segment, tuple(steps), policy, scored)


def fixed_outcome(
    known: Targeted, name: str, ids: tuple[str, ...], default: int, certain: OneHot
) -> Targeted:
    """``known`` with its decision's fields made up front when no draw picks the variant (a
    force rule's or, nothing eligible, the default): ``core.decide.Decision`` in field order,
    all but the decision id (``head``, then ``tail``), so a request only joins the three."""
    if known.forced >= 0:
        arm, reason = known.forced, Reason.RULE
    elif not known.eligible:
        arm, reason = default, Reason.DEFAULT
    else:
        return known
    kind = known.policy.kind
    head, tail = fixed_fields(name, ids[arm], arm, reason, kind, certain[arm], known.steps)
    return known._replace(head=head, tail=tail)


def fixed_fields(
    name: str,
    variant: str,
    arm: int,
    reason: Reason,
    kind: str,
    certain: tuple[float, ...],
    steps: tuple[Step, ...],
    propensity: float = 1.0,
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """A decision no draw made, as ``core.decide.Decision``'s fields in order: those before
    its decision id and those after (no draw, the one-hot distribution ``certain``, no
    features or scores, no segment, no eligible count)."""
    return (name, variant, arm, propensity, reason, kind), (0.0, certain, (), steps, (), "", 0)
