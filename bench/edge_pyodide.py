"""Edge benchmark under Pyodide 0.28.2 (real WebAssembly, in Node): prints one JSON document.

Measures, inside Pyodide with ``time.perf_counter``:

* per-request CPU time of ``edge.handler.handle`` for the fixture page (cookie decode, decide,
  rewrite setup, cookie encode, event building and signing; no network, no HTML parsing: see
  ``bench/edge_work.MemoryIO``), new and returning visitors carrying their cookies;
* cold start: import time of the bundle's modules, the fixture snapshot's decode + prepare
  (``Engine.from_bytes``) and a synthetic 1,000-variant snapshot's;

and the same handler and decode figures under CPython in this process, with the ratios.
Run: ``.venv/bin/python bench/edge_pyodide.py [--requests N]`` (needs ``make setup``: npm ci and
the workers-runtime-sdk wheel in build/wheels; without the wheel the SDK import is skipped).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import edge_work  # noqa: E402
from compile.build import build_snapshot  # noqa: E402
from compile.bundle import build as build_bundle  # noqa: E402
from core.snapshot import decode_header, encode_snapshot  # noqa: E402

DRIVER = ROOT / "bench" / "edge_pyodide.mjs"
SDK_WHEEL = ROOT / "build" / "wheels" / "workers_runtime_sdk-1.9.5-py3-none-any.whl"
TARGETS_MS = {"p50": 1.0, "p99": 3.0, "fixture_decode": 50.0, "synthetic_decode": 500.0}
CPYTHON_IMPORTS = "import msgpack; import core.engine, core.decide, core.cookie, core.events"


def prepare(work: Path) -> tuple[bytes, bytes, str]:
    """Bundle, snapshots, pages and the workload module in ``work``; returns the blobs and id."""
    build_bundle(work / "bundle")
    fixture = build_snapshot(ROOT / "fixtures" / "site.toml", ROOT / "fixtures" / "model.json")
    synthetic = encode_snapshot(edge_work.synthetic_site(), author="bench")
    (work / "fixture.snap").write_bytes(fixture)
    (work / "synthetic.snap").write_bytes(synthetic)
    shutil.copytree(ROOT / "fixtures" / "pages", work / "pages")
    shutil.copyfile(ROOT / "bench" / "edge_work.py", work / "edge_work.py")
    return fixture, synthetic, decode_header(fixture)[0].id


def run_pyodide(work: Path, fixture_id: str, requests: int, warmup: int) -> dict[str, Any]:
    config = {
        "bundle": str(work / "bundle"),
        "sdk_wheel": str(SDK_WHEEL) if SDK_WHEEL.exists() else None,
        "work": str(work),
        "fixture_id": fixture_id,
        "requests": requests,
        "warmup": warmup,
    }
    (work / "config.json").write_text(json.dumps(config))
    done = subprocess.run(
        ["node", str(DRIVER), str(work / "config.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"the Pyodide run failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def cpython_imports(bundle: Path) -> float:
    """Milliseconds to import msgpack and core from the bundle's .py files, in a fresh interpreter
    writing no bytecode (what Pyodide does: compile every module from source)."""
    code = (
        f"import sys, time; sys.path.insert(0, {str(bundle)!r}); t = time.perf_counter(); "
        f"{CPYTHON_IMPORTS}; import edge.handler; print((time.perf_counter() - t) * 1000)"
    )
    done = subprocess.run(
        [sys.executable, "-B", "-c", code], capture_output=True, text=True, check=True, cwd=bundle
    )
    return round(float(done.stdout.strip()), 2)


def verdict(value: float, target: float) -> str:
    return f"{value:.3f} ms vs <= {target:g} ms: {'met' if value <= target else 'NOT met'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    if not (ROOT / "node_modules" / "pyodide" / "package.json").exists():
        raise SystemExit("node_modules/pyodide is missing: run `make setup`")
    with tempfile.TemporaryDirectory(prefix="edgepick-bench-") as tmp:
        work = Path(tmp)
        fixture, synthetic, fixture_id = prepare(work)
        started = time.perf_counter()
        pyodide = run_pyodide(work, fixture_id, args.requests, args.warmup)
        wall = time.perf_counter() - started
        cpython: dict[str, Any] = {
            "runtime": f"CPython {platform.python_version()}",
            "imports_ms": cpython_imports(work / "bundle"),
            "fixture_decode": edge_work.decode_timing(fixture, 20),
            "synthetic_decode": edge_work.decode_timing(synthetic, 5),
            "handler": edge_work.handler_timing(
                fixture,
                fixture_id,
                edge_work.load_pages(ROOT / "fixtures" / "pages"),
                args.requests,
                args.warmup,
            ),
        }
    handler, chandler = pyodide["handler"]["all"], cpython["handler"]["all"]
    fixture_ms = pyodide["fixture_decode"]["first_ms"]
    synthetic_ms = pyodide["synthetic_decode"]["first_ms"]
    result = {
        "benchmark": "edge_pyodide",
        "machine": platform.machine(),
        "pyodide_wall_seconds": round(wall, 1),
        "pyodide": pyodide,
        "cpython": cpython,
        "ratios_pyodide_over_cpython": {
            "handler_p50": round(handler["p50_ms"] / chandler["p50_ms"], 2),
            "handler_p99": round(handler["p99_ms"] / chandler["p99_ms"], 2),
            "fixture_decode_median": round(
                pyodide["fixture_decode"]["median_ms"] / cpython["fixture_decode"]["median_ms"], 2
            ),
            "synthetic_decode_median": round(
                pyodide["synthetic_decode"]["median_ms"] / cpython["synthetic_decode"]["median_ms"],
                2,
            ),
        },
        "targets_under_pyodide": {
            "handler_p50": verdict(handler["p50_ms"], TARGETS_MS["p50"]),
            "handler_p99": verdict(handler["p99_ms"], TARGETS_MS["p99"]),
            "fixture_decode_first": verdict(fixture_ms, TARGETS_MS["fixture_decode"]),
            "synthetic_1000_variants_decode_first": verdict(
                synthetic_ms, TARGETS_MS["synthetic_decode"]
            ),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
