"""A snapshot prepared for the request path: predicates compiled, indices resolved, once."""

from __future__ import annotations

from dataclasses import dataclass

from core.conditions import Predicate, compile_condition
from core.model import Lifecycle, RuleAction, Site, Slot, Snapshot
from core.policies import PreparedPolicy, prepare
from core.snapshot import decode_snapshot


@dataclass(frozen=True, slots=True)
class PreparedRule:
    audience: str
    action: RuleAction
    indices: frozenset[int]
    first: int  # the variant a FORCE rule serves


@dataclass(frozen=True, slots=True)
class PreparedSlot:
    slot: Slot
    ids: tuple[str, ...]
    index_of: dict[str, int]
    default: int
    active: tuple[int, ...]
    rules: tuple[PreparedRule, ...]
    policy: PreparedPolicy


@dataclass(frozen=True, slots=True)
class Engine:
    snapshot_id: str
    site: Site
    audiences: dict[str, Predicate]
    slots: dict[str, PreparedSlot]

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
        return cls(snapshot_id, site, audiences, {s.name: _prepare_slot(s) for s in site.slots})


def _prepare_slot(slot: Slot) -> PreparedSlot:
    ids = tuple(v.id for v in slot.variants)
    index_of = {vid: i for i, vid in enumerate(ids)}
    rules = tuple(
        PreparedRule(
            r.audience,
            r.action,
            frozenset(index_of[v] for v in r.variants),
            index_of[r.variants[0]] if r.variants else -1,
        )
        for r in slot.rules
    )
    active = tuple(i for i, v in enumerate(slot.variants) if v.lifecycle is Lifecycle.ACTIVE)
    return PreparedSlot(
        slot, ids, index_of, index_of[slot.default], active, rules, prepare(slot.policy)
    )
