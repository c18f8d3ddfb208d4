"""The time-to-first-byte benchmark streams through a real wrangler dev (docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.ttfb import ROOT


def test_the_ttfb_benchmark_streams_through_both_workers() -> None:
    done = subprocess.run(
        [sys.executable, "bench/ttfb.py", "--samples", "2", "--delay", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout[done.stdout.index("{") :])
    # streamed: each worker's first byte comes long before the origin's tail (2 s later)
    assert result["through_edgepick_streamed"]["first_byte"]["max_ms"] < 1500
    assert result["through_growthbook_js_worker"]["first_byte"]["max_ms"] < 1500
    assert result["through_edgepick_first_view_buffered_ms"]["first_byte"] >= 2000
    assert "median_ms" in result["first_byte_gap_edgepick_minus_growthbook_js_ms"]
