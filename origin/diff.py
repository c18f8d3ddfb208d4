"""``edgepick diff A B``: what changed between two snapshots, in words.

Compares site settings, audiences, and per slot: variants (added, removed, lifecycle, content,
taxonomy, threshold), rules, the policy kind, and the numbers the learner sets (Thompson and
fixed weights, linear arm bias and feature weights, cold-start allocation) beyond ``tol``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.model import FixedPolicy, LinearPolicy, Site, Slot, ThompsonPolicy


def _numbers(slot: Slot) -> dict[str, float]:
    """The learned numbers of a slot by a readable name."""
    policy = slot.policy
    ids = [v.id for v in slot.variants]
    out: dict[str, float] = {}
    if isinstance(policy, FixedPolicy | ThompsonPolicy):
        out.update({f"weight[{vid}]": w for vid, w in zip(ids, policy.weights, strict=True)})
    if isinstance(policy, ThompsonPolicy):
        for segment, weights in zip(policy.segments, policy.segment_weights, strict=True):
            out.update({f"{segment}.weight[{vid}]": w for vid, w in zip(ids, weights, strict=True)})
    elif isinstance(policy, LinearPolicy):
        for vid, arm in zip(ids, policy.arms, strict=True):
            out[f"arm[{vid}].bias"] = arm.bias
            for name, w in zip(policy.features, arm.weights, strict=True):
                out[f"arm[{vid}].{name}"] = w
        for vid, w in zip(ids, policy.cold_start, strict=False):
            out[f"cold_start[{vid}]"] = w
    return out


def diff_slots(a: Slot, b: Slot, tol: float) -> list[str]:
    lines: list[str] = []
    va = {v.id: v for v in a.variants}
    vb = {v.id: v for v in b.variants}
    for vid in sorted(vb.keys() - va.keys()):
        lines.append(f"+ variant {vid} ({vb[vid].lifecycle.value})")
    for vid in sorted(va.keys() - vb.keys()):
        lines.append(f"- variant {vid}")
    for vid in sorted(va.keys() & vb.keys()):
        x, y = va[vid], vb[vid]
        if x.lifecycle != y.lifecycle:
            lines.append(f"~ variant {vid}: {x.lifecycle.value} -> {y.lifecycle.value}")
        if x.content != y.content:
            lines.append(f"~ variant {vid}: content changed")
        if x.tags != y.tags:
            lines.append(f"~ variant {vid}: taxonomy changed")
        if x.min_engagement != y.min_engagement:
            lines.append(
                f"~ variant {vid}: min_engagement {x.min_engagement} -> {y.min_engagement}"
            )
    if a.default != b.default:
        lines.append(f"~ default {a.default} -> {b.default}")
    if a.rules != b.rules:
        ra = {(r.audience, r.action.value, r.variants) for r in a.rules}
        rb = {(r.audience, r.action.value, r.variants) for r in b.rules}
        for r in sorted(rb - ra):
            lines.append(f"+ rule: audience {r[0]} {r[1]}s {', '.join(r[2])}")
        for r in sorted(ra - rb):
            lines.append(f"- rule: audience {r[0]} {r[1]}s {', '.join(r[2])}")
        if ra == rb:
            lines.append("~ rules reordered")
    kind_a, kind_b = type(a.policy).__name__, type(b.policy).__name__
    if kind_a != kind_b:
        lines.append(f"~ policy {kind_a} -> {kind_b}")
        return lines
    na, nb = _numbers(a), _numbers(b)
    for name in sorted(na.keys() | nb.keys()):
        old, new = na.get(name), nb.get(name)
        if old is None or new is None or abs(old - new) > tol:
            fx = "-" if old is None else f"{old:.4f}"
            fy = "-" if new is None else f"{new:.4f}"
            lines.append(f"~ {name} {fx} -> {fy}")
    return lines


def diff_sites(a: Site, b: Site, tol: float = 1e-6) -> list[str]:
    """Human-readable lines, grouped by slot; empty when nothing changed."""
    lines: list[str] = []
    for name in ("name", "epoch", "holdout", "origin"):
        x, y = getattr(a, name), getattr(b, name)
        if x != y:
            lines.append(f"site.{name}: {x!r} -> {y!r}")
    aa = {x.name: x for x in a.audiences}
    ab = {x.name: x for x in b.audiences}
    for n in sorted(ab.keys() - aa.keys()):
        lines.append(f"+ audience {n}")
    for n in sorted(aa.keys() - ab.keys()):
        lines.append(f"- audience {n}")
    for n in sorted(aa.keys() & ab.keys()):
        if aa[n].condition != ab[n].condition:
            lines.append(f"~ audience {n}: condition changed")
    sa = {s.name: s for s in a.slots}
    sb = {s.name: s for s in b.slots}
    for n in sorted(sb.keys() - sa.keys()):
        lines.append(f"+ slot {n}")
    for n in sorted(sa.keys() - sb.keys()):
        lines.append(f"- slot {n}")
    for n in [s.name for s in a.slots if s.name in sb]:
        changes = diff_slots(sa[n], sb[n], tol)
        if changes:
            lines.append(f"[{n}]")
            lines.extend(f"  {c}" for c in changes)
    return lines


def render(lines: Sequence[str], a: str, b: str) -> str:
    if not lines:
        return f"{a} -> {b}: no changes"
    return "\n".join([f"{a} -> {b}", *lines])


# ---------------------------------------------------------------- in words, for visitors

SHIFT_PP = 1.0  # allocation changes below this many percentage points are not worth a line


def allocations(site: Site) -> dict[str, dict[str, dict[str, float]]]:
    """Per slot, who sees what: ``{"everyone": {variant: share}, "<segment> visitors": ...}``.

    Context-free policies give their exact serving probabilities (for visitors no rule
    forces); a contextual (linear) policy's depend on each visitor, so its cold-start
    allocation (what new visitors get) stands for it.
    """
    from core.engine import Engine

    engine = Engine.from_site(site)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, prepared in engine.slots.items():
        ids = prepared.ids
        groups: dict[str, dict[str, float]] = {}
        base = prepared.untargeted
        if base.scored is not None:
            groups["everyone"] = _shares(ids, base.scored.probabilities)
            for segment in getattr(prepared.policy, "segments", ()):
                scored = prepared.policy.for_segment(segment).score(base.eligible, (), False)
                groups[f"{segment} visitors"] = _shares(ids, scored.probabilities)
        elif isinstance(prepared.slot.policy, LinearPolicy) and prepared.slot.policy.cold_start:
            weights = prepared.slot.policy.cold_start
            total = sum(weights[i] for i in base.eligible) or 1.0
            groups["new visitors"] = {
                ids[i]: weights[i] / total for i in base.eligible if weights[i] > 0
            }
        out[name] = groups
    return out


def _shares(ids: Sequence[str], probs: Sequence[float]) -> dict[str, float]:
    return {vid: p for vid, p in zip(ids, probs, strict=True) if p > 0}


def for_visitors(a: Site, b: Site) -> dict[str, Any]:
    """What changes for visitors from ``a`` to ``b``, as data (``edgepick diff --json``)."""
    changes: dict[str, Any] = {"site": {}, "slots": {}}
    if a.holdout != b.holdout:
        changes["site"]["holdout"] = [a.holdout, b.holdout]
    alloc_a, alloc_b = allocations(a), allocations(b)
    sa, sb = {s.name: s for s in a.slots}, {s.name: s for s in b.slots}
    changes["slots_added"] = sorted(sb.keys() - sa.keys())
    changes["slots_removed"] = sorted(sa.keys() - sb.keys())
    for name in [s.name for s in b.slots if s.name in sa]:
        x, y = sa[name], sb[name]
        entry: dict[str, Any] = {}
        va, vb = {v.id: v for v in x.variants}, {v.id: v for v in y.variants}
        added = [v for v in vb if v not in va]
        removed = [v for v in va if v not in vb]
        lifecycle = {
            v: [va[v].lifecycle.value, vb[v].lifecycle.value]
            for v in sorted(va.keys() & vb.keys())
            if va[v].lifecycle != vb[v].lifecycle
        }
        content = sorted(v for v in va.keys() & vb.keys() if va[v].content != vb[v].content)
        if added or removed or lifecycle or content:
            entry["variants"] = {
                "added": added,
                "removed": removed,
                "lifecycle": lifecycle,
                "content_changed": content,
            }
        ra = [(r.audience, r.action.value, list(r.variants)) for r in x.rules]
        rb = [(r.audience, r.action.value, list(r.variants)) for r in y.rules]
        if ra != rb:
            entry["rules"] = {
                "added": [r for r in rb if r not in ra],
                "removed": [r for r in ra if r not in rb],
            }
        if x.default != y.default:
            entry["default"] = [x.default, y.default]
        shifts = {}
        before, after = alloc_a.get(name, {}), alloc_b.get(name, {})
        for group in sorted(after.keys() | before.keys()):
            old, new = before.get(group, {}), after.get(group, {})
            moved = {
                v: [round(old.get(v, 0.0), 4), round(new.get(v, 0.0), 4)]
                for v in sorted(old.keys() | new.keys())
                if abs(new.get(v, 0.0) - old.get(v, 0.0)) * 100 >= SHIFT_PP
            }
            if moved:
                shifts[group] = moved
        if shifts:
            entry["allocation"] = shifts
        if entry:
            changes["slots"][name] = entry
    return changes


def words(changes: Mapping[str, Any]) -> list[str]:
    """The changes as sentences a marketer reads: what visitors will see differently."""
    lines: list[str] = []
    if "holdout" in changes["site"]:
        old, new = changes["site"]["holdout"]
        lines.append(f"Holdout: {old:.0%} -> {new:.0%} of visitors see only the defaults.")
    for name in changes.get("slots_added", []):
        lines.append(f"New slot {name}.")
    for name in changes.get("slots_removed", []):
        lines.append(f"Slot {name} is gone: its elements keep the page's own content.")
    for name, entry in changes["slots"].items():
        variants = entry.get("variants", {})
        for vid in variants.get("added", []):
            lines.append(f"{name}: new variant {vid}.")
        for vid in variants.get("removed", []):
            lines.append(f"{name}: variant {vid} removed; nobody sees it any more.")
        for vid, (old, new) in sorted(variants.get("lifecycle", {}).items()):
            seen = "nobody sees it any more" if new != "active" else "visitors can see it again"
            lines.append(f"{name}: variant {vid} {old} -> {new}; {seen}.")
        for vid in variants.get("content_changed", []):
            lines.append(f"{name}: variant {vid} has new content.")
        if "default" in entry:
            old, new = entry["default"]
            lines.append(f"{name}: the default (holdout, fallbacks) is now {new} (was {old}).")
        for audience, action, vids in entry.get("rules", {}).get("added", []):
            lines.append(f"{name}: new rule, visitors in {audience} {_rule(action, vids)}.")
        for audience, action, vids in entry.get("rules", {}).get("removed", []):
            lines.append(
                f"{name}: rule removed, visitors in {audience} no longer {_rule(action, vids)}."
            )
        for group, moved in sorted(entry.get("allocation", {}).items()):
            parts = [
                f"{vid} {new:.0%} (was {old:.0%}, {round(new * 100) - round(old * 100):+d} pp)"
                for vid, (old, new) in sorted(
                    moved.items(), key=lambda kv: (-abs(kv[1][1] - kv[1][0]), kv[0])
                )
            ]
            lines.append(f"{name}, {group}: " + ", ".join(parts) + ".")
    return lines


def _rule(action: str, variants: Sequence[str]) -> str:
    listed = ", ".join(variants)
    if action == "force":
        return f"always see {listed}"
    if action == "restrict":
        return f"see only {listed}"
    return f"never see {listed}"
