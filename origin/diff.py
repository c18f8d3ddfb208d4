"""``edgepick diff A B``: what changed between two snapshots, in words.

Compares site settings, audiences, and per slot: variants (added, removed, lifecycle, content,
taxonomy, threshold), rules, the policy kind, and the numbers the learner sets (Thompson and
fixed weights, linear arm bias and feature weights, cold-start allocation) beyond ``tol``.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.model import FixedPolicy, LinearPolicy, Site, Slot, ThompsonPolicy


def _numbers(slot: Slot) -> dict[str, float]:
    """The learned numbers of a slot by a readable name."""
    policy = slot.policy
    ids = [v.id for v in slot.variants]
    out: dict[str, float] = {}
    if isinstance(policy, FixedPolicy | ThompsonPolicy):
        out.update({f"weight[{vid}]": w for vid, w in zip(ids, policy.weights, strict=True)})
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
    for vid in vb.keys() - va.keys():
        lines.append(f"+ variant {vid} ({vb[vid].lifecycle.value})")
    for vid in va.keys() - vb.keys():
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
