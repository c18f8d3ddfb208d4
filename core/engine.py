"""A snapshot prepared for the request path: predicates compiled, indices resolved, once."""

from __future__ import annotations

from dataclasses import dataclass

from core.conditions import Predicate, attribute_names, compile_condition
from core.features import ATTRIBUTES, AttributeBuilder
from core.model import Lifecycle, RuleAction, Site, Slot, Snapshot
from core.policies import PreparedPolicy, prepare
from core.snapshot import decode_snapshot


@dataclass(frozen=True, slots=True)
class PreparedRule:
    audience: str
    force: bool  # serve ``first``
    restrict: bool  # keep only ``indices`` (else: drop them)
    verb: str  # for the explain trail
    indices: frozenset[int]
    first: int
    from_active: tuple[int, ...]  # the slot's active variants once this rule narrowed them


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
    certain: tuple[tuple[float, ...], ...]  # [i]: the distribution that always serves variant i


@dataclass(frozen=True, slots=True)
class Engine:
    snapshot_id: str
    site: Site
    audiences: dict[str, Predicate]
    slots: dict[str, PreparedSlot]
    attribute_keys: tuple[str, ...]  # the built-in attributes the site's conditions read
    reads_affinity: bool
    build_attributes: AttributeBuilder

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> Engine:
        return cls.from_site(snapshot.site, snapshot.header.id)

    @classmethod
    def from_bytes(cls, blob: bytes) -> Engine:
        return cls.from_snapshot(decode_snapshot(blob))

    @classmethod
    def from_site(cls, site: Site, snapshot_id: str = "") -> Engine:
        groups = site.saved_groups
        audiences = {a.name: compile_condition(a.condition, groups) for a in site.audiences}
        read: set[str] = set()
        for audience in site.audiences:
            read |= attribute_names(audience.condition)
        keys = tuple(k for k in ATTRIBUTES if k in read)
        slots = {s.name: _prepare_slot(s, n, site.epoch) for n, s in enumerate(site.slots)}
        affinity = bool({"affinity", "topCategory"} & set(keys))
        return cls(snapshot_id, site, audiences, slots, keys, affinity, AttributeBuilder(keys))


def _prepare_slot(slot: Slot, position: int, epoch: int) -> PreparedSlot:
    ids = tuple(v.id for v in slot.variants)
    index_of = {vid: i for i, vid in enumerate(ids)}
    active = tuple(i for i, v in enumerate(slot.variants) if v.lifecycle is Lifecycle.ACTIVE)
    rules = []
    for r in slot.rules:
        indices = frozenset(index_of[v] for v in r.variants)
        restrict = r.action is RuleAction.RESTRICT
        rules.append(
            PreparedRule(
                r.audience,
                r.action is RuleAction.FORCE,
                restrict,
                f"{r.action.value}s",
                indices,
                index_of[r.variants[0]] if r.variants else -1,
                tuple(i for i in active if (i in indices) == restrict),
            )
        )
    certain = tuple(tuple(1.0 if j == i else 0.0 for j in range(len(ids))) for i in range(len(ids)))
    policy = prepare(slot.policy, slot.name, epoch)
    return PreparedSlot(
        slot, ids, index_of, index_of[slot.default], active, tuple(rules), policy, position, certain
    )
