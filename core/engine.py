"""A snapshot prepared for the request path: audiences compiled, indices resolved, once."""

from __future__ import annotations

from dataclasses import dataclass

from core.conditions import attribute_names
from core.features import ATTRIBUTES, FIELDS, AttributeBuilder, attribute_builder
from core.model import Lifecycle, RuleAction, Site, Slot, Snapshot
from core.policies import PreparedPolicy, prepare
from core.predicates import FusedHits, Hits, compile_fused_hits, compile_hits
from core.snapshot import decode_snapshot
from core.targeting import OneHot, PreparedRule, PreparedSlot, fixed_outcome, resolve

__all__ = ["Engine", "PreparedRule", "PreparedSlot"]


@dataclass(frozen=True, slots=True)
class Engine:
    snapshot_id: str
    site: Site
    slots: dict[str, PreparedSlot]
    reads_affinity: bool  # the site's conditions read the decayed affinity
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
        conditions = {a.name: a.condition for a in site.audiences}
        policies = {s.name: prepare(s.policy, s.name, site.epoch) for s in site.slots}
        named = {  # per slot, every audience its rules and segments name, in order
            s.name: (*(r.audience for r in s.rules), *policies[s.name].segments) for s in site.slots
        }
        hits = compile_hits(conditions, named, groups)
        fused = compile_fused_hits(conditions, named, FIELDS, groups)
        read: set[str] = set()
        for audience in site.audiences:
            read |= attribute_names(audience.condition)
        for group in groups.values():  # typed groups read attributes of their own
            if isinstance(group, dict):
                read |= attribute_names(group.get("condition"))
                if isinstance(group.get("attributeKey"), str):
                    read.add(group["attributeKey"].split(".")[0])
        keys = tuple(k for k in ATTRIBUTES if k in read)
        slots = {
            s.name: _prepare_slot(s, n, policies[s.name], hits[s.name], fused.get(s.name))
            for n, s in enumerate(site.slots)
        }
        affinity = bool({"affinity", "topCategory"} & set(keys))
        return cls(snapshot_id, site, slots, affinity, attribute_builder(keys))


def _prepare_slot(
    slot: Slot, position: int, policy: PreparedPolicy, hits: Hits, fused: FusedHits | None
) -> PreparedSlot:
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
            )
        )
    certain = OneHot(len(ids))
    return PreparedSlot(
        slot,
        ids,
        index_of,
        index_of[slot.default],
        active,
        tuple(rules),
        policy,
        position,
        f"-{position}",
        slot.paths,
        certain,
        bool(rules or policy.segments),
        hits,
        {},
        fixed_outcome(
            resolve(tuple(rules), ids, active, policy, ()),
            slot.name,
            ids,
            index_of[slot.default],
            certain,
        ),
        fused,
    )
