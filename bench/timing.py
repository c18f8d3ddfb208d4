"""Timing helper shared by the benchmarks (stdlib only: it also runs inside Pyodide)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def measure(fn: Callable[[int], Any], batches: int = 200, per_batch: int = 50) -> dict[str, float]:
    """Microseconds per call: median and p99 over batches (each batch's mean)."""
    for i in range(per_batch * 5):  # warm up
        fn(i)
    samples = []
    counter = 0
    for _ in range(batches):
        start = time.perf_counter_ns()
        for _ in range(per_batch):
            fn(counter)
            counter += 1
        samples.append((time.perf_counter_ns() - start) / per_batch / 1000)
    samples.sort()
    return {
        "median_us": round(statistics.median(samples), 2),
        "p99_us": round(samples[int(len(samples) * 0.99) - 1], 2),
    }
