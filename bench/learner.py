"""Learner throughput and memory: synthetic exposures -> mergeable aggregates -> the model JSON.

Synthetic policy-draw exposures for the fixture site's contextual slot ``hero`` (15 features,
8 arms: the widest slot) with click rewards from a known linear model, then, each phase timed:

- ``aggregate``: ``origin.aggregates.aggregate`` over ``TrainingRow`` objects already in memory
  (the learner's own work: group by (slot, arm), ``Z^T Z`` and ``Z^T r`` per arm);
- ``merge``: the same rows aggregated in 4 partitions and merged (checked equal to the single
  pass: the sums really are mergeable);
- ``learn``: ``origin.learn.learn`` on the aggregates (Thompson P(best) for the cold-start
  allocation, one ridge solve per arm plus the population model);
- ``store path`` (``--store-events``, smaller by default because SQLite is the slow part):
  ``SqliteStore.append`` in 500-event batches (the collector's commit path), then
  ``training_rows`` (the exposure/outcome join) -> ``aggregate`` -> ``learn``, as
  ``edgepick sync`` does.

Memory: the resident-set growth of each phase (what it leaves allocated: e.g. the rows), the
peak Python heap of ``aggregate`` and of loading rows from the store (tracemalloc, in a separate
untimed run), and the process's peak resident set. Prints one JSON document.
Run: ``.venv/bin/python bench/learner.py`` (``--events 1000000 --store-events 100000``).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compile.build import build_snapshot  # noqa: E402
from core.model import LinearPolicy, Site  # noqa: E402
from core.snapshot import decode_snapshot  # noqa: E402
from origin.aggregates import Aggregates, aggregate  # noqa: E402
from origin.learn import LearnConfig, learn, widths  # noqa: E402
from origin.store import SqliteStore  # noqa: E402
from origin.training import TrainingRow, Windows, training_rows  # noqa: E402

SLOT = "hero"
NOW_MS = 1_790_000_000_000


def peak_rss_mb() -> float:
    """The process's peak resident set so far, MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def fixture_site() -> Site:
    blob = build_snapshot(ROOT / "fixtures" / "site.toml", ROOT / "fixtures" / "model.json")
    return decode_snapshot(blob).site


def synthetic(
    site: Site, n: int, seed: int
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Arms, feature matrix and click rewards for ``n`` exposures of ``SLOT``."""
    slot = next(s for s in site.slots if s.name == SLOT)
    assert isinstance(slot.policy, LinearPolicy)
    width = len(slot.policy.features)
    arms = [v.id for v in slot.variants]
    rng = np.random.default_rng(seed)
    x = rng.random((n, width)).round(3)
    x[:, 0] = 1.0  # the 'bias' feature
    arm = rng.integers(0, len(arms), n)
    theta = rng.normal(0.0, 0.15, (len(arms), width))
    p = 1.0 / (1.0 + np.exp(-(np.einsum("ij,ij->i", x, theta[arm]) - 2.0)))
    clicks = (rng.random(n) < p).astype(float)
    return arms, x, arm, clicks


def rows(arms: list[str], x: np.ndarray, arm: np.ndarray, clicks: np.ndarray) -> list[TrainingRow]:
    out = []
    features = x.tolist()
    for i, (f, a, r) in enumerate(zip(features, arm.tolist(), clicks.tolist(), strict=True)):
        out.append(
            TrainingRow(
                f"d{i}-1",
                NOW_MS + i,
                f"v{i}",
                SLOT,
                arms[a],
                0.125,
                "policy",
                "s1",
                tuple(f),
                int(r),
                0,
                0.0,
                r,
            )
        )
    return out


def rss_mb() -> float:
    """The process's current resident set, MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return round(pages * resource.getpagesize() / 2**20, 1)


@contextmanager
def timed(label: str, results: dict[str, Any], events: int) -> Iterator[None]:
    """Context: wall time, events/s and resident memory of one phase, into ``results[label]``."""
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    results[label] = {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds) if seconds > 0 and events else None,
        "rss_growth_mb": round(rss_mb() - before, 1),
    }


def traced_peak_mb(fn: Callable[[], object]) -> float:
    """Peak Python heap allocated while ``fn`` runs (tracemalloc; a separate, slower run)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return round((peak - base) / 2**20, 1)


def in_memory(site: Site, n: int, seed: int, partitions: int) -> dict[str, Any]:
    results: dict[str, Any] = {"rss_mb_start": rss_mb()}
    arms, x, arm, clicks = synthetic(site, n, seed)
    with timed("build_rows", results, n):
        training = rows(arms, x, arm, clicks)
    del x
    w = widths(site)
    with timed("aggregate", results, n):
        aggregates = aggregate(training, w)
    chunk = (n + partitions - 1) // partitions
    with timed("aggregate_partitions_and_merge", results, n):
        merged = Aggregates(dict(w))
        for p in range(partitions):
            merged = merged.merged(aggregate(training[p * chunk : (p + 1) * chunk], w))
    results["aggregate_partitions_and_merge"]["partitions"] = partitions
    results["merge_equals_single_pass"] = merged.close_to(aggregates)
    results["aggregate"]["traced_peak_mb"] = traced_peak_mb(partial(aggregate, training, w))
    del training, merged
    with timed("learn", results, 0):  # independent of the row count
        model = learn(site, aggregates, LearnConfig(seed=seed))
    results["learned_arms"] = len(model["slots"][SLOT].get("arms", {}))
    results["arms"] = len(arms)
    return results


def store_path(site: Site, n: int, seed: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    arms, x, arm, clicks = synthetic(site, n, seed + 1)
    exposures: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []
    for i, (f, a, r) in enumerate(zip(x.tolist(), arm.tolist(), clicks.tolist(), strict=True)):
        exposures.append(
            {
                "type": "exposure",
                "id": f"d{i}-1",
                "ts": NOW_MS + i,
                "visitor": f"v{i}",
                "user": "",
                "slot": SLOT,
                "variant": arms[a],
                "propensity": 0.125,
                "policy": "linear",
                "reason": "policy",
                "snapshot": "s1",
                "features": f,
                "decision_us": 120,
                "device": "mobile",
                "country": "DE",
            }
        )
        if r:
            outcomes.append(
                {
                    "type": "click",
                    "id": f"c{i}",
                    "ts": NOW_MS + i + 5000,
                    "visitor": f"v{i}",
                    "decision": f"d{i}-1",
                    "value": 0.0,
                }
            )
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "events.db")
        try:
            every = exposures + outcomes
            with timed("store_append_500_per_batch", results, len(every)):
                for start in range(0, len(every), 500):
                    store.append(every[start : start + 500])
            del exposures, outcomes, every
            w = widths(site)
            with timed("store_to_training_rows", results, n):
                training = list(training_rows(store, Windows()))
            with timed("store_rows_aggregate", results, n):
                aggregates = aggregate(training, w)
            results["store_to_training_rows"]["traced_peak_mb"] = traced_peak_mb(
                lambda: list(training_rows(store, Windows()))
            )
            del training
            with timed("store_rows_learn", results, 0):
                learn(site, aggregates, LearnConfig(seed=seed))
            total = sum(
                results[k]["seconds"]
                for k in ("store_to_training_rows", "store_rows_aggregate", "store_rows_learn")
            )
            results["store_to_model_total"] = {
                "events": n,
                "seconds": round(total, 3),
                "events_per_s": round(n / total) if total > 0 else None,
            }
            results["clicks"] = int(clicks.sum())
            results["db_mb"] = round((Path(tmp) / "events.db").stat().st_size / 2**20, 1)
        finally:
            store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store-events", type=int, default=100_000, help="0 skips the store")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    site = fixture_site()
    slot = next(s for s in site.slots if s.name == SLOT)
    assert isinstance(slot.policy, LinearPolicy)
    out: dict[str, Any] = {
        "benchmark": "learner",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "slot": SLOT,
        "features": len(slot.policy.features),
        "arms": len(slot.variants),
        "in_memory": in_memory(site, args.events, args.seed, args.partitions),
    }
    if args.store_events:
        out["store_path"] = store_path(site, args.store_events, args.seed)
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
