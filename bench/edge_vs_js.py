"""edgepick at the edge against the peer a Workers user would pick: GrowthBook's JavaScript SDK
(npm ``@growthbook/growthbook``, pinned) in a JavaScript worker. Prints one JSON document.

Everything runs in one Node process (``bench/edge_vs_js.mjs``), interleaved, so the ratios
compare like with like on this noisy machine:

* **per evaluation**: ``decide()`` for one slot in Pyodide (visitor state and request context
  built before timing) vs GrowthBook JS ``getFeatureValue`` (a reused instance whose attributes
  are set per visitor, and a new instance per visitor), on 2,000 mixed visitors (16-hex ids,
  countries, devices, visit counts, referrers, UTM sources: force rules, the experiment and the
  default all occur), every visitor's answer compared (``disagreements`` must be 0). The
  edgepick slot is ``bench.peer_work.rules_site``; GrowthBook's feature is
  ``bench.vs_growthbook.FEATURES``. Timed: a batch of 200 evaluations in V8 (``performance.now``),
  each side keeping its answers in its own language's list; the Pyodide batch is one call from
  JS, so one FFI crossing per 200 evaluations is inside (the answers' conversion to JS, for the
  agreement check, is not). ``edgepick_parts_us``: where ``decide()``'s time goes (visitors
  served by a rule or the default, those the experiment draws for, the draw alone, the least
  Python that serves a rule), timed inside Pyodide in the same run.
* **whole worker, per request**: process CPU (``process.cpuUsage``, user + system) from the call
  into the worker to its response body's last byte and every ``ctx.waitUntil`` promise settled
  (event delivery included), for: edgepick's production entry (``edge/entries/entry.py``, a
  ``WorkerEntrypoint`` through the Python Workers SDK, ``edge.interop``, the handler, the
  HTMLRewriter over html-rewriter-wasm, the lol-html engine workerd uses); the JS worker
  (``bench/js_worker.mjs``: signed cookie, one GrowthBook evaluation per slot, origin fetch,
  HTMLRewriter with JS handlers, re-signed cookie, one signed event batch); and a Python
  pass-through worker (``bench/passthrough_entry.py``: the floor of a Python Worker). The origin
  and the collector answer from memory. Traffic: the fixture store's pages, half new visitors,
  half returning with the cookie the same worker set them.
* **cold start**: a fresh Pyodide isolate per process (three processes each way): importing the
  entry, then its first request and a second one; ``kv``: the snapshot comes from KV (the first
  request reads and prepares it); ``bundled``: the bundle carries it (``compile.bundle
  --snapshot``), prepared at import, so the first request reads only KV's pointer (and
  ``edge.warmup`` has run the request path once at import). On Cloudflare the imports are done
  once at deploy (the runtime snapshots the imported worker's memory): a new isolate pays the
  first request, not the import. Before the timed first requests, the harness's own stand-ins
  for what workerd has native (HTMLRewriter over html-rewriter-wasm, the in-memory origin and
  KV) are used once, untimed, and V8's heap is collected (``node --expose-gc``: the process
  holds the loading's garbage, which an isolate restored from its snapshot does not). Reported
  too: a **new isolate in a warm process** (a second Pyodide in the same process, as workerd
  starts isolates in a running process: the compiled WebAssembly is shared), and a Python
  pass-through's first request there (the floor).

``--alone`` runs each worker in a process of its own instead (its own V8 heap: no other worker's
garbage collected inside its requests) and reports CPU quantiles (no ratios: not interleaved)
and V8's collections in that process (``node --trace-gc``: count, median and longest pause).

Run: ``.venv/bin/python bench/edge_vs_js.py [--requests N] [--cold-runs N] [--alone]`` (needs
``make setup``).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench.peer_work as work  # noqa: E402
from bench.vs_growthbook import FEATURES  # noqa: E402
from compile.bundle import build as build_bundle  # noqa: E402
from compile.site import compile_site, load_toml  # noqa: E402
from core.engine import Engine  # noqa: E402
from core.model import Placement  # noqa: E402
from core.snapshot import decode_header, encode_snapshot  # noqa: E402

SDK_WHEEL = ROOT / "build" / "wheels" / "workers_runtime_sdk-1.9.5-py3-none-any.whl"
FIXTURES = ROOT / "fixtures"
ENV = {
    "ORIGIN_URL": "http://origin.bench",
    "COLLECTOR_URL": "http://collector.bench/v1/events",
    "EVENTS_SECRET": "bench-events",
    "COOKIE_KEYS": "k1:bench-cookie-secret",
    "SNAPSHOT_TTL_SECONDS": "60",
    "COOKIE_SECURE": "false",
}
UAS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36",
)
REFERERS = ("", "", "https://www.google.com/", "https://shop.bench/c/running")
PATHS = ("/", "/", "/c/running", "/c/hiking", "/p/run-trail-shoe")


def pages() -> dict[str, str]:
    html = {p.stem: p.read_text() for p in (FIXTURES / "pages").glob("*.html")}
    found = {"/": html["index"], "/landing/outdoor": html["landing-outdoor"]}
    found["/landing/deals"] = html["landing-deals"]
    for path in PATHS[2:]:
        found[path] = html["category"]
    return found


def site_features(engine: Engine) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The JS worker's GrowthBook features for the fixture store's inline element slots: per
    slot, a force rule for EU visitors and an even experiment over its active variants."""
    features: dict[str, Any] = {}
    slots = []
    for name, prepared in engine.slots.items():
        slot = prepared.slot
        if slot.placement is not Placement.INLINE or not slot.selector.startswith("[data-"):
            continue
        if slot.granularity.value == "page":
            continue
        contents = [slot.variants[i].content for i in sorted(prepared.active)]
        features[name] = {
            "defaultValue": slot.variants[prepared.index_of[slot.default]].content,
            "rules": [
                {"condition": {"country": {"$in": ["DE", "FR", "IT", "ES"]}}, "force": contents[0]},
                {
                    "key": name,
                    "seed": name,
                    "hashVersion": 2,
                    "variations": contents,
                    "weights": [1 / len(contents)] * len(contents),
                },
            ],
        }
        slots.append({"name": name, "selector": slot.selector})
    return features, slots


def traffic(count: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "path": rng.choice(PATHS),
            "ua": rng.choice(UAS),
            "referer": rng.choice(REFERERS),
            "country": rng.choice(("US", "US", "GB", "DE", "FR", "CA")),
            "ip": f"198.51.100.{rng.randrange(1, 255)}",
            "returning": rng.random() < 0.5,
            "slot": rng.randrange(300),
        }
        for _ in range(count)
    ]


def layers(profile: dict[str, Any], top: int = 15) -> dict[str, Any]:
    """A V8 ``.cpuprofile``'s samples summed by layer (share of sampled time, %), and its
    heaviest functions. WebAssembly is told apart by module: Pyodide's (the Python interpreter
    running the worker's Python) has about 10,000 functions, html-rewriter-wasm's lol-html under
    a thousand: a module where an index past 2,000 was sampled is Pyodide's."""
    nodes = {n["id"]: n["callFrame"] for n in profile["nodes"]}
    spent: dict[int, int] = {}
    for sample, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        spent[sample] = spent.get(sample, 0) + delta
    wasm_modules: dict[str, int] = {}  # url -> the highest function index seen
    for frame in nodes.values():
        name = frame["functionName"]
        if name.startswith("wasm-function["):
            index = int(name[len("wasm-function[") : name.index("]")])
            wasm_modules[frame["url"]] = max(wasm_modules.get(frame["url"], 0), index)
    pyodide_wasm = {url for url, highest in wasm_modules.items() if highest > 2000}

    def layer(frame: dict[str, Any]) -> str:
        url, name = str(frame["url"]), str(frame["functionName"])
        if url in wasm_modules:
            if url in pyodide_wasm:
                return "python interpreter (Pyodide wasm)"
            return "lol-html (html-rewriter-wasm)"
        if "pyodide" in url:
            return "Pyodide JS glue (FFI, proxies, event loop timers)"
        if "html-rewriter" in url:
            return "lol-html (html-rewriter-wasm)"
        if "growthbook" in url or url.endswith("js_worker.mjs"):
            return "the JS worker"
        if url.endswith(("edge_vs_js.mjs", "pyodide_host.mjs")):
            return "harness"
        if name in ("(garbage collector)", "(program)", "(idle)"):
            return name
        if name == "cpuUsage":
            return "harness"
        return "Node builtins (fetch, Request/Response, streams, timers)"

    by_layer: dict[str, int] = {}
    by_function: dict[str, int] = {}
    for node_id, time in spent.items():
        frame = nodes[node_id]
        key = layer(frame)
        by_layer[key] = by_layer.get(key, 0) + time
        where = frame["url"].rsplit("/", 1)[-1]
        label = f"{frame['functionName'] or '(anonymous)'} {where}".strip()
        by_function[label] = by_function.get(label, 0) + time
    total = sum(spent.values()) or 1

    def share(time: int) -> float:
        return round(100 * time / total, 1)

    return {
        "sampled_ms": round(total / 1000, 1),
        "share_percent_by_layer": {
            k: share(v) for k, v in sorted(by_layer.items(), key=lambda kv: -kv[1])
        },
        "heaviest_functions_percent": {
            k: share(v) for k, v in sorted(by_function.items(), key=lambda kv: -kv[1])[:top]
        },
    }


GC_LINE = re.compile(r"ms: (Scavenge|Mark-Compact)\S* .*?MB, ([0-9.]+) /")


def collections(trace: str) -> dict[str, dict[str, float]]:
    """V8's collections in a ``--trace-gc`` output, by kind: how many, median and longest ms."""
    found: dict[str, list[float]] = {}
    for kind, pause in GC_LINE.findall(trace):
        found.setdefault(kind, []).append(float(pause))
    return {
        kind: {"count": len(p), "median_ms": statistics.median(p), "max_ms": max(p)}
        for kind, p in found.items()
    }


def run_node(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    path = folder / f"config-{config['mode']}.json"
    path.write_text(json.dumps(config))
    trace = ["--trace-gc"] if config.get("trace_gc") else []
    done = subprocess.run(
        ["node", "--expose-gc", *trace, str(ROOT / "bench" / "edge_vs_js.mjs"), str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench/edge_vs_js.mjs failed:\n{done.stderr[-4000:]}")
    if config.get("sort") and config["mode"] == "cold":
        sys.stderr.write(done.stderr)  # the first request's profile
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if trace:
        result["v8_collections"] = collections(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1500, help="requests per worker")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument(
        "--profile", choices=("tottime", "cumtime"), help="cProfile the Python worker instead"
    )
    parser.add_argument(
        "--profile-cold",
        choices=("tottime", "cumtime"),
        help="cProfile a fresh isolate's first request (snapshot bundled) instead",
    )
    parser.add_argument(
        "--v8-profile",
        choices=("edgepick", "growthbook_js_worker", "python_passthrough"),
        help="V8's sampling profiler over one worker's warm requests: CPU by layer instead",
    )
    parser.add_argument(
        "--alone",
        action="store_true",
        help="each worker in a process of its own (own V8 heap): CPU quantiles, no ratios",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds, no warmup")
    args = parser.parse_args()
    if not SDK_WHEEL.exists():
        raise SystemExit(f"{SDK_WHEEL} is missing: run `make setup`")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build_bundle(folder / "bundle")
        config = load_toml(FIXTURES / "site.toml")
        fixture = encode_snapshot(compile_site(config))
        (folder / "fixture.snap").write_bytes(fixture)
        (folder / "eval.snap").write_bytes(encode_snapshot(work.rules_site()))
        features, slots = site_features(Engine.from_bytes(fixture))
        base = {
            "bundle": str(folder / "bundle"),
            "sdk_wheel": str(SDK_WHEEL),
            "work": str(ROOT / "bench"),
            "fixture_snap": str(folder / "fixture.snap"),
            "fixture_id": decode_header(fixture)[0].id,
            "eval_snap": str(folder / "eval.snap"),
            "eval_features": FEATURES,
            "visitors": work.mixed_visitors(2000),
            "site_features": features,
            "slots": slots,
            "pages": pages(),
            "env": ENV,
            "traffic": traffic(600),
            "requests": args.requests,
            "warmup": 5 if args.quick else 150,
            "round_size": 10 if args.quick else 50,
            "rounds": 3 if args.quick else 60,
            "per_round": 200,
        }
        if args.v8_profile:
            file = folder / "warm.cpuprofile"
            settings = {"v8_profile": args.v8_profile, "v8_profile_file": str(file)}
            run_node({**base, "mode": "profile", **settings}, folder)
            found = layers(json.loads(file.read_text()))
            print(json.dumps({"worker": args.v8_profile, "requests": args.requests, **found}))
            return
        if args.alone:  # the tails without another worker's garbage in the same heap
            alone = {}
            for name in ("edgepick", "growthbook_js_worker", "python_passthrough"):
                settings = {"mode": "warm", "alone": name, "trace_gc": True}
                found = run_node({**base, **settings}, folder)
                alone[name] = {
                    **found["whole_worker"]["cpu_per_request"],
                    # the whole process's, loading included: young-generation collections
                    # (Scavenge) come with the garbage each request leaves in V8's heap
                    "v8_collections": found["v8_collections"],
                }
            print(json.dumps({"requests": args.requests, "alone_cpu_per_request": alone}))
            return
        if args.profile:
            profiled = run_node({**base, "mode": "profile", "sort": args.profile}, folder)
            print(profiled["profile"])
            return
        if args.profile_cold:
            build_bundle(folder / "bundled", snapshot=fixture)
            bundled = {**base, "mode": "cold", "bundle": str(folder / "bundled")}
            print(json.dumps(run_node({**bundled, "sort": args.profile_cold}, folder)["cold"]))
            return
        warm = run_node({**base, "mode": "warm"}, folder)
        build_bundle(folder / "bundled", snapshot=fixture)
        colds: dict[str, list[dict[str, float]]] = {"kv": [], "bundled": []}
        for _ in range(args.cold_runs):  # fresh processes, alternating
            colds["kv"].append(run_node({**base, "mode": "cold"}, folder)["cold"])
            bundled = {**base, "mode": "cold", "bundle": str(folder / "bundled")}
            colds["bundled"].append(run_node(bundled, folder)["cold"])
    cold = {
        how: {key: round(statistics.median(c[key] for c in runs), 2) for key in runs[0]}
        for how, runs in colds.items()
    }
    print(
        json.dumps(
            {
                "runtime": f"Pyodide {warm['pyodide']} in Node {warm['node']}",
                "peer": "GrowthBook JS SDK (npm @growthbook/growthbook, package.json)",
                **{k: v for k, v in warm.items() if k not in ("pyodide", "node")},
                "cold_start_median_of_runs": cold,
                "cold_runs": colds,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
