"""The edge's scaling curves (variants per slot, slots, rules, linear features, cookie affinity
categories) under Pyodide 0.28.2 (real wasm, in Node) and CPython, and the wasm heap a snapshot
of N variants takes once prepared. Prints one JSON document.

Timed regions (``bench/scaling_work.py``): ``prepare_ms`` is ``Engine.from_bytes`` (decode +
prepare, once per snapshot per isolate); ``decide_us`` is one ``decide()`` of every slot for a
visitor (state and context built before); ``encode_decode_us`` is one cookie encode + decode.
``python_peak_mb`` is tracemalloc's peak while preparing; ``wasm_heap_mb`` is the growth of
Pyodide's linear memory (``HEAP8.length``) in a fresh interpreter from before the snapshot is
made to after it is prepared (the snapshot's bytes and the prepared engine; the heap never
shrinks, so this is the high-water mark a worker would need).

Run: ``.venv/bin/python bench/edge_scaling.py [--quick]`` (needs ``make setup``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import scaling_work  # noqa: E402
from bench.in_pyodide import run_code  # noqa: E402
from compile.bundle import build as build_bundle  # noqa: E402

PACKAGES = {"bench": ROOT / "bench"}
HEAP_CODE = """
import json, pyodide_js
before = pyodide_js._module.HEAP8.length
from bench import scaling_work
found = scaling_work.heap_after_prepare({variants})
after = pyodide_js._module.HEAP8.length
json.dumps({{**found, "wasm_heap_mb": round((after - before) / 2**20, 1),
            "wasm_heap_total_mb": round(after / 2**20, 1)}})
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build_bundle(folder / "bundle")
        code = "import json\nfrom bench import scaling_work\n"
        code += f"json.dumps(scaling_work.curves({args.quick}))"
        pyodide = run_code(folder / "bundle", PACKAGES, code)
        sizes = (100, 1000) if args.quick else (100, 1000, 3000, 10000)
        heap = [run_code(folder / "bundle", PACKAGES, HEAP_CODE.format(variants=n)) for n in sizes]
    print(
        json.dumps(
            {
                "pyodide": pyodide,
                "cpython": scaling_work.curves(args.quick),
                "wasm_heap_per_snapshot": heap,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
