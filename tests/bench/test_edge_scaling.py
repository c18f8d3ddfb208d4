"""The scaling benchmark runs (its figures are the benchmark's, docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.edge_scaling import ROOT


def test_the_scaling_curves_run_under_pyodide_and_cpython() -> None:
    done = subprocess.run(
        [sys.executable, "bench/edge_scaling.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    for side in ("pyodide", "cpython"):
        variants = result[side]["variants_per_slot"]
        assert [p["variants"] for p in variants] == [10, 100]
        assert all(p["prepare_ms"] > 0 and p["decide_us"] > 0 for p in variants)
        cookies = result[side]["cookie_affinity_categories"]
        assert all(p["cookie_bytes"] <= 1024 for p in cookies)
    assert [h["variants"] for h in result["wasm_heap_per_snapshot"]] == [100, 1000]
