"""``edgepick evaluate``: off-policy estimates of target policies from the project's own logs.

Rows are the store's exposures joined with their outcomes (``origin.training``), policy draws
only (rule, holdout and preview exposures have propensity 1 and were not the policy's choice).
Each row names the snapshot that decided it (its slot's variant ids) and carries the logging
policy's distribution as the edge logged it, so nothing is reconstructed.

**Logging distributions.** Each policy draw's exposure carries the distribution the policy
drew from (``eligible``: the arm indices it gave a positive probability; ``probs``: those
probabilities to 6 significant digits; the logged propensity is exact and replaces its own
entry). That distribution is the logging policy ``pi_0(. | x)`` of the estimators, and its
support is the row's eligible set. Rows without one (logged before edges recorded it), rows
whose snapshot is missing from the registry, and rows whose logged variant is outside their
own support are left out and counted (``dropped``).

**Targets** (all over the logged eligible set of each row):

* ``logging``: each row's own logging policy (IPS then equals the on-policy mean exactly);
* ``uniform``: uniform over the eligible variants;
* ``current``: the registry's current snapshot's policy for the slot;
* ``greedy``: the current snapshot's most probable variant, with no exploration;
* ``snapshot:ID``: any snapshot in the registry.

A target learned from the same rows it is evaluated on (``current`` usually is) is optimistic;
use ``since_ms``/``--since`` to evaluate on rows after the ones it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.engine import Engine, PreparedSlot
from origin.ope import Estimate, Logged, evaluate, on_policy, ridge_reward_model
from origin.registry import Registry, RegistryError
from origin.store import EventStore
from origin.training import Reward, TrainingRow, Windows, training_rows

TARGETS = ("logging", "uniform", "current", "greedy")


@dataclass
class SlotResult:
    slot: str
    rows: int
    dropped: int
    arms: list[str]
    on_policy: Estimate | None = None
    estimates: dict[str, dict[str, Estimate]] = field(default_factory=dict)  # target -> name -> e

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "rows": self.rows,
            "dropped": self.dropped,
            "arms": self.arms,
            "on_policy": self.on_policy.as_dict() if self.on_policy else None,
            "estimates": {
                t: {k: e.as_dict() for k, e in est.items()} for t, est in self.estimates.items()
            },
        }


class _Engines:
    """Engines by snapshot id, decoded once."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.cache: dict[str, Engine | None] = {}

    def get(self, sid: str) -> Engine | None:
        if sid not in self.cache:
            try:
                self.cache[sid] = Engine.from_bytes(self.registry.get(sid))
            except (RegistryError, ValueError, OSError):
                self.cache[sid] = None
        return self.cache[sid]


def logged_distribution(
    prepared: PreparedSlot, row: TrainingRow
) -> tuple[tuple[int, ...], tuple[float, ...]] | None:
    """The row's eligible arms and the logging policy's probabilities over the slot's arms, as
    the edge logged them (the exact propensity for the logged arm); ``None`` when unusable."""
    arm = prepared.index_of.get(row.variant)
    count = len(prepared.ids)
    if arm is None or arm not in row.eligible or len(row.probs) != len(row.eligible):
        return None
    if any(i >= count for i in row.eligible):
        return None
    probs = [0.0] * count
    for i, p in zip(row.eligible, row.probs, strict=True):
        probs[i] = p
    probs[arm] = row.propensity
    return row.eligible, tuple(probs)


def target_distribution(
    target: str,
    engine: Engine | None,
    slot: str,
    ids: Sequence[str],
    eligible_ids: Sequence[str],
    row: TrainingRow,
    logging: Sequence[float],
) -> list[float] | None:
    """The target's probabilities over ``ids`` (the slot's action space) for one row."""
    index = {vid: i for i, vid in enumerate(ids)}
    out = [0.0] * len(ids)
    if target == "logging":
        return list(logging)
    if target == "uniform":
        for vid in eligible_ids:
            out[index[vid]] = 1.0 / len(eligible_ids)
        return out
    if engine is None or slot not in engine.slots:
        return None
    prepared = engine.slots[slot]
    elig = [prepared.index_of[v] for v in eligible_ids if v in prepared.index_of]
    elig = [i for i in elig if i in prepared.active]
    if not elig:
        return None
    x = row.features
    if prepared.policy.features and len(x) != len(prepared.policy.features):
        return None
    policy = prepared.policy.for_segment(row.segment)
    probs = policy.score(elig, x, row.reason == "fallback").probabilities
    if target == "greedy":
        best = max(elig, key=lambda i: probs[i])
        out[index[prepared.ids[best]]] = 1.0
        return out
    for i in elig:
        out[index[prepared.ids[i]]] = probs[i]
    return out


def evaluate_store(
    store: EventStore,
    registry: Registry,
    *,
    targets: Sequence[str] = TARGETS,
    slots: Sequence[str] | None = None,
    since_ms: int = 0,
    windows: Windows | None = None,
    reward: Reward | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> list[SlotResult]:
    """Per slot: the on-policy mean and IPS/SNIPS/DR of every target, with intervals."""
    engines = _Engines(registry)
    current_id = registry.current()
    named: dict[str, Engine | None] = {}
    for t in targets:
        if t in ("current", "greedy"):
            named[t] = engines.get(current_id) if current_id else None
        elif t.startswith("snapshot:"):
            named[t] = engines.get(registry.resolve(t.partition(":")[2]))
        elif t not in ("logging", "uniform"):
            raise ValueError(f"unknown target {t!r} (known: {', '.join(TARGETS)}, snapshot:ID)")
    by_slot: dict[str, list[TrainingRow]] = {}
    for row in training_rows(store, windows or Windows(), reward or Reward(), since_ms):
        if row.learnable and (slots is None or row.slot in slots):
            by_slot.setdefault(row.slot, []).append(row)
    results: list[SlotResult] = []
    for slot, rows in sorted(by_slot.items()):
        ids: list[str] = []
        kept: list[tuple[TrainingRow, tuple[str, ...], list[float]]] = []
        for row in rows:
            engine = engines.get(row.snapshot)
            if engine is None or slot not in engine.slots:
                continue
            prepared = engine.slots[slot]
            found = logged_distribution(prepared, row)
            if found is None:
                continue
            eligible, probs = found
            for vid in prepared.ids:
                if vid not in ids:
                    ids.append(vid)
            kept.append((row, tuple(prepared.ids[i] for i in eligible), list(probs)))
        result = SlotResult(slot, len(kept), len(rows) - len(kept), ids)
        results.append(result)
        if not kept:
            continue
        index = {vid: i for i, vid in enumerate(ids)}
        width = max((len(r.features) for r, _, _ in kept), default=0)
        contexts = np.asarray(
            [r.features if len(r.features) == width else (0.0,) * width for r, _, _ in kept],
            dtype=float,
        ).reshape(len(kept), width)
        logged = Logged(
            np.asarray([index[r.variant] for r, _, _ in kept]),
            np.asarray([r.reward for r, _, _ in kept], dtype=float),
            np.asarray([r.propensity for r, _, _ in kept], dtype=float),
            contexts,
            len(ids),
        )
        result.on_policy = on_policy(logged.rewards, resamples=resamples, seed=seed)
        q = ridge_reward_model(logged, seed=seed)
        for t in targets:
            dists: list[list[float]] = []
            usable: list[int] = []
            for n, (row, eligible_ids, logging) in enumerate(kept):
                engine = engines.get(row.snapshot)
                assert engine is not None
                padded = [0.0] * len(ids)
                for vid, p in zip(engine.slots[slot].ids, logging, strict=True):
                    padded[index[vid]] = p
                dist = target_distribution(t, named.get(t), slot, ids, eligible_ids, row, padded)
                if dist is not None:
                    dists.append(dist)
                    usable.append(n)
            if not usable:
                continue
            rows_idx = np.asarray(usable)
            result.estimates[t] = evaluate(
                logged.subset(rows_idx),
                np.asarray(dists, dtype=float),
                q[rows_idx],
                resamples=resamples,
                seed=seed,
            )
    return results


def table(results: Sequence[SlotResult]) -> str:
    """A readable table of every slot's estimates (CTR-like values in percent)."""
    from origin.ope import format_table

    blocks: list[str] = []
    for res in results:
        head = f"== {res.slot}: {res.rows} policy draws evaluated"
        if res.dropped:
            head += f" ({res.dropped} left out: no logged distribution, or snapshot missing)"
        rows: list[tuple[str, Estimate]] = []
        if res.on_policy:
            rows.append(("logged (on-policy)", res.on_policy))
        for target, est in res.estimates.items():
            rows.extend((target, e) for e in est.values())
        blocks.append(head + "\n" + format_table(rows, scale=100.0, unit="%"))
    return "\n\n".join(blocks) if blocks else "no policy draws in the store"
