"""The edge benchmark against GrowthBook's JavaScript SDK runs and compares like with like:
every visitor gets the same variant from both engines, and every worker answers every request
(its speed figures are the benchmark's, docs/benchmarks.md, not asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from typing import Any

from growthbook import GrowthBook

import bench.peer_work as work
from bench.edge_vs_js import ROOT
from bench.vs_growthbook import FEATURES
from core.decide import decide
from core.engine import Engine
from core.features import RequestContext, VisitorState


def run_bench(*args: str) -> Any:
    """``bench/edge_vs_js.py`` with these arguments: its JSON (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, "bench/edge_vs_js.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_equivalent_slot_matches_growthbook_on_mixed_traffic() -> None:
    engine = Engine.from_site(work.rules_site())
    sources: Counter[str] = Counter()
    for i, doc in enumerate(work.mixed_visitors(1500)):
        state = VisitorState(doc["id"], visits=doc["visits"])
        context = RequestContext(
            device=doc["device"],
            country=doc["country"],
            referrer=doc["referrer"],
            utm_source=doc["utmSource"],
        )
        ours = decide(engine, state, context, work.NOW, ("cta",), nonce=f"{i:016x}")[0].variant
        theirs = GrowthBook(attributes=doc, features=FEATURES).eval_feature("cta")
        assert ours == theirs.value, doc
        sources[theirs.source] += 1
    assert set(sources) == {"force", "experiment", "defaultValue"}  # every path occurs
    assert min(sources.values()) > 150


def test_the_benchmark_runs_every_worker_and_agrees_with_growthbook_js() -> None:
    result = run_bench("--requests", "20", "--cold-runs", "1", "--quick")
    assert result["per_evaluation"]["disagreements"] == 0
    whole = result["whole_worker"]
    assert set(whole["statuses"]) == {"edgepick", "python_passthrough", "growthbook_js_worker"}
    assert all(codes == {"200": 20} for codes in whole["statuses"].values())
    assert whole["events_delivered"] >= 2 * 25  # edgepick's and the JS worker's batches
    assert all(q["n"] == 20 and q["p50_ms"] > 0 for q in whole["cpu_per_request"].values())
    for how in ("kv", "bundled"):
        cold = result["cold_start_median_of_runs"][how]
        assert cold["first_request_cpu_ms"] > 0 and cold["import_entry_cpu_ms"] > 0
        assert cold["new_isolate_first_request_cpu_ms"] > 0
        assert cold["passthrough_new_isolate_first_request_cpu_ms"] > 0


def test_the_v8_profile_sums_a_workers_cpu_by_layer() -> None:
    profile = ["--v8-profile", "edgepick"]
    found = run_bench("--requests", "30", "--quick", *profile)
    shares = found["share_percent_by_layer"]
    assert found["worker"] == "edgepick" and found["sampled_ms"] > 0
    assert shares["python interpreter (Pyodide wasm)"] > 0 and 99 <= sum(shares.values()) <= 101


def test_each_worker_runs_alone_in_a_process_of_its_own() -> None:
    alone = run_bench("--requests", "20", "--quick", "--alone")["alone_cpu_per_request"]
    assert set(alone) == {"edgepick", "python_passthrough", "growthbook_js_worker"}
    assert all(q["n"] == 20 and 0 < q["p50_ms"] <= q["p99_ms"] for q in alone.values())
