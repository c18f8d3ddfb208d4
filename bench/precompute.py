"""Pre-computed decisions vs the live path: prints one JSON document.

The table is built by the off-peak job (``origin.precompute``) from 2,000 demo visitors; the
traffic measured is 2,000 others (another seed), every page request of theirs. Timed region,
per request (microseconds, median and p99 over batches, ``bench.timing``): **live** is
``core.decide.decide`` for the page's inline slots; **precomputed** is
``core.precomputed.decide_cached`` (context key, table lookup, the visitor's own draws) and, on
a miss, ``decide`` as well (what the edge does under load). Both run on the same requests in
the same order, under CPython and under Pyodide 0.28.2 (Node, real WebAssembly: the edge's
runtime). Run: ``.venv/bin/python bench/precompute.py [--no-pyodide]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import measure  # noqa: E402
from core.decide import decide  # noqa: E402
from core.engine import Engine  # noqa: E402
from core.precomputed import decide_cached, serving  # noqa: E402
from origin.population import population  # noqa: E402
from origin.precompute import demo_requests, hit_rate, inline_slots, precompute  # noqa: E402

NOW = 1_790_000_000


def figures(blob: bytes, visitors: int = 2000) -> dict[str, Any]:
    """The table, its hit rate and the per-request times (module docstring), in this runtime."""
    engine = Engine.from_bytes(blob)
    job = precompute(engine, visitors, seed=1, now=NOW)
    traffic = list(demo_requests(engine, population(visitors, 2, prefix="bench"), NOW + 10_000))
    slots = inline_slots(engine)
    table = job.table
    served = serving(engine, table)
    hits = [r for r in traffic if decide_cached(engine, served, *r, slots) is not None]

    def live(i: int, pool: list[Any] = traffic) -> Any:
        state, context, now = pool[i % len(pool)]
        return decide(engine, state, context, now, slots, nonce="bench")

    def cached(i: int, pool: list[Any] = traffic) -> Any:
        state, context, now = pool[i % len(pool)]
        found = decide_cached(engine, served, state, context, now, slots, nonce="bench")
        return found if found is not None else decide(engine, state, context, now, slots)

    mixed_live, mixed_cached = measure(live), measure(cached)
    hit_live = measure(lambda i: live(i, hits))
    hit_cached = measure(lambda i: cached(i, hits))
    return {
        "python": platform.python_version(),
        "slots_per_request": len(slots),
        "table": {
            "entries": len(table),
            "bytes": len(job.blob),
            "built_from_requests": job.contexts,
            "distinct_contexts": job.distinct,
        },
        "demo_traffic": {
            "requests": len(traffic),
            "hit_rate": round(hit_rate(engine, table, traffic), 4),
        },
        "per_request_us": {
            "all_requests": {"live": mixed_live, "precomputed_or_live": mixed_cached},
            "hits_only": {"live": hit_live, "precomputed": hit_cached},
        },
        "cpu_saved_per_request": {
            "all_requests": round(1 - mixed_cached["median_us"] / mixed_live["median_us"], 3),
            "hits_only": round(1 - hit_cached["median_us"] / hit_live["median_us"], 3),
        },
    }


PYODIDE_CODE = """
import base64, json
from bench.precompute import figures
json.dumps(figures(base64.b64decode("{blob}")))
"""


def pyodide(blob: bytes) -> dict[str, Any]:
    """``figures`` inside Pyodide 0.28.2 with the worker bundle (``bench/pyodide_run.mjs``)."""
    from bench.in_pyodide import run_code  # here: this module itself is copied into Pyodide
    from compile.bundle import build

    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        build(bundle)
        extra = Path(tmp) / "extra"
        for package, names in (
            ("bench", ("__init__.py", "timing.py", "precompute.py")),
            ("origin", ("__init__.py", "population.py", "precompute.py")),
        ):
            (extra / package).mkdir(parents=True)
            for name in names:
                (extra / package / name).write_bytes((ROOT / package / name).read_bytes())
        code = PYODIDE_CODE.replace("{blob}", base64.b64encode(blob).decode())
        packages = {"bench": extra / "bench", "origin": extra / "origin"}
        found: dict[str, Any] = run_code(bundle, packages, code, 1200)
    return found


def main() -> None:
    from compile.build import build_snapshot

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-pyodide", action="store_true", help="CPython only")
    args = parser.parse_args()
    blob = build_snapshot(ROOT / "fixtures" / "site.toml", ROOT / "fixtures" / "model.json")
    out = {"cpython": figures(blob)}
    if not args.no_pyodide:
        out["pyodide"] = pyodide(blob)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
