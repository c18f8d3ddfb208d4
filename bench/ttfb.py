"""Time to first byte through the worker against the origin's own and against the peer a
Workers user would pick, on a streaming origin: real ``wrangler dev`` (workerd, HTMLRewriter) in
front of an origin on 127.0.0.1 that sends its page's head at once and its tail ``--delay``
seconds later. Prints one JSON document.

Four ways to the same page, interleaved: the origin directly; edgepick's worker; GrowthBook's JS
SDK in a JS worker (``bench/js_worker.mjs``: signed cookie, one evaluation per slot,
HTMLRewriter, re-signed cookie, one event batch); and a Python worker that only passes the
request to the origin (the floor any Python Worker pays here), each under its own ``wrangler
dev`` of the same wrangler and workerd. The two deciding workers ship their events to a
collector on the origin's server.
Timed (wall clock, this process): from sending the request to the first byte of the body, and
to its last. ``wrangler dev``'s local proxy adds tens of milliseconds to anything behind it, so
the worker's own share is the gap to the JS worker, not to the origin. The edgepick worker's
first view of the path is buffered (it learns which slots the page holds: ``edge/presence.py``)
and reported apart; every later view streams.

Run: ``.venv/bin/python bench/ttfb.py [--samples N] [--delay S]`` (needs ``make setup``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.edge_vs_js import site_features  # noqa: E402
from cli.devstack import free_port, pinned_worker, start_wrangler  # noqa: E402
from compile.site import compile_site, load_toml  # noqa: E402
from core.engine import Engine  # noqa: E402
from core.snapshot import encode_snapshot  # noqa: E402
from origin.publish import publish  # noqa: E402
from origin.registry import Registry  # noqa: E402
from origin.targets import parse_target  # noqa: E402

HEAD = (
    "<!doctype html><html><head><title>bench</title></head><body>"
    '<h1 data-edgepick-slot="headline">Outdoor gear</h1>'
    '<div data-edgepick-slot="hero">hero</div>'
)
TAIL = '<a data-edgepick-slot="cta" href="/c/running">Shop now</a></body></html>'
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


def origin_server(delay: float) -> ThreadingHTTPServer:
    class Origin(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(HEAD.encode())
            self.wfile.flush()
            time.sleep(delay)
            self.wfile.write(TAIL.encode())

        def do_POST(self) -> None:  # both workers' event batches
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"stored":1}')

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def timed_get(port: int, path: str) -> tuple[float, float, int]:
    """(ms to the body's first byte, ms to its last, status)."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path, headers={"user-agent": BROWSER, "accept": "text/html"})
    response = connection.getresponse()
    response.read1(1)
    first = (time.perf_counter() - start) * 1000
    response.read()
    whole = (time.perf_counter() - start) * 1000
    connection.close()
    return first, whole, response.status


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values), 1),
        "min_ms": round(min(values), 1),
        "max_ms": round(max(values), 1),
    }


def js_peer(folder: Path, engine: Engine, origin_url: str) -> Path:
    """A ``wrangler.toml`` and entry for ``bench/js_worker.mjs`` over the fixture's slots as
    GrowthBook features (``bench.edge_vs_js.site_features``); wrangler bundles GrowthBook's SDK
    from ``node_modules``."""
    folder.mkdir(parents=True)
    features, slots = site_features(engine)
    settings = {
        "features": features,
        "slots": slots,
        "cookieSecret": "ttfb-cookie-secret",
        "eventsSecret": "ttfb-events",
        "originUrl": origin_url,
        "collectorUrl": f"{origin_url}/events",
    }
    (folder / "peer.json").write_text(json.dumps(settings))
    worker = (ROOT / "bench" / "js_worker.mjs").as_posix()
    (folder / "entry.mjs").write_text(
        f'import {{ makeJsWorker }} from "{worker}";\n'
        'import settings from "./peer.json";\n'
        "let worker;\n"
        "export default {\n"
        "  async fetch(request, env, ctx) {\n"
        "    worker ??= await makeJsWorker(settings);\n"
        "    return worker.fetch(request, env, ctx);\n"
        "  },\n"
        "};\n"
    )
    config = folder / "wrangler.toml"
    config.write_text(
        'name = "growthbook-js-peer"\nmain = "entry.mjs"\ncompatibility_date = "2024-11-06"\n'
        'compatibility_flags = ["nodejs_compat"]\n'
    )
    return config


PASSTHROUGH = """\
import js
from pyodide.ffi import create_proxy, to_js

REWRITE = {rewrite}
HANDLER = (  # one JS handler object, its element function a Python no-op, made once
    js.Object.fromEntries(to_js([["element", create_proxy(lambda element: None)]]))
    if REWRITE
    else None
)


async def on_fetch(request, env, ctx=None):
    url = js.URL.new(request.url)
    page = await js.fetch(str(env.ORIGIN_URL) + str(url.pathname) + str(url.search), request)
    if HANDLER is None:
        return page
    return js.HTMLRewriter.new().on("[data-edgepick-slot]", HANDLER).transform(page)
"""


def python_passthrough(folder: Path, origin_url: str, rewrite: bool = False) -> Path:
    """A ``wrangler.toml`` and entry for a Python worker that only fetches the origin (the same
    runtime settings as edgepick's local worker: ``wrangler.toml``'s date and flags); with
    ``rewrite``, through an HTMLRewriter whose one element handler is a Python no-op on the
    page's slots (what any Python handler costs a streamed page's first byte)."""
    folder.mkdir(parents=True)
    (folder / "entry.py").write_text(PASSTHROUGH.format(rewrite=rewrite))
    config = folder / "wrangler.toml"
    config.write_text(
        'name = "python-passthrough"\nmain = "entry.py"\ncompatibility_date = "2024-11-06"\n'
        f'compatibility_flags = ["python_workers"]\n[vars]\nORIGIN_URL = "{origin_url}"\n'
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds between head and tail")
    args = parser.parse_args()
    origin = origin_server(args.delay)
    origin_url = f"http://127.0.0.1:{origin.server_address[1]}"
    port, peer_port, floor_port, noop_port = free_port(), free_port(), free_port(), free_port()
    workers = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        snapshot = encode_snapshot(compile_site(load_toml(ROOT / "fixtures" / "site.toml")))
        registry = Registry(folder / "registry")
        publish(snapshot, [parse_target(f"wrangler:{folder / 'kv'}")], registry, author="bench")
        variables = {
            "ORIGIN_URL": origin_url,
            "COLLECTOR_URL": f"{origin_url}/events",
            "EVENTS_SECRET": "ttfb-events",
            "COOKIE_KEYS": "k1:ttfb-cookie-secret",
            "SNAPSHOT_TTL_SECONDS": "60",
        }
        try:
            config = pinned_worker(folder / "worker")
            workers.append(start_wrangler(port, folder / "kv", variables, folder, config=config))
            peer = js_peer(folder / "peer", Engine.from_bytes(snapshot), origin_url)
            workers.append(
                start_wrangler(
                    peer_port, folder / "peer-kv", {}, folder, ready_path="/ready", config=peer
                )
            )
            floor = python_passthrough(folder / "passthrough", origin_url)
            workers.append(
                start_wrangler(
                    floor_port, folder / "floor-kv", {}, folder, ready_path="/ready", config=floor
                )
            )
            noop = python_passthrough(folder / "noop-handler", origin_url, rewrite=True)
            workers.append(
                start_wrangler(
                    noop_port, folder / "noop-kv", {}, folder, ready_path="/ready", config=noop
                )
            )
            first_view = timed_get(port, "/shop")  # buffered: the isolate learns the page
            timed_get(peer_port, "/shop")  # the JS worker's first request, likewise untimed
            timed_get(floor_port, "/shop")
            timed_get(noop_port, "/shop")
            direct = int(origin.server_address[1])
            ways = {
                "direct": direct,
                "edgepick": port,
                "growthbook_js": peer_port,
                "python_passthrough": floor_port,
                "python_noop_handler": noop_port,
            }
            seen: dict[str, dict[str, list[float]]] = {
                way: {"first_byte": [], "whole": []} for way in ways
            }
            for _ in range(args.samples):
                for way, target in ways.items():
                    first, whole, status = timed_get(target, "/shop")
                    assert status == 200, (way, status)
                    seen[way]["first_byte"].append(first)
                    seen[way]["whole"].append(whole)
        finally:
            for worker in workers:
                worker.stop()
            origin.shutdown()

    def gaps(a: str, b: str, field: str = "first_byte") -> dict[str, float]:
        pairs = zip(seen[a][field], seen[b][field], strict=True)
        return summary([x - y for x, y in pairs])

    print(
        json.dumps(
            {
                "origin_delay_between_head_and_tail_ms": args.delay * 1000,
                "samples": args.samples,
                "timed": "wall clock from sending the request to the body's first / last byte",
                "direct": {k: summary(v) for k, v in seen["direct"].items()},
                "through_edgepick_streamed": {k: summary(v) for k, v in seen["edgepick"].items()},
                "through_growthbook_js_worker": {
                    k: summary(v) for k, v in seen["growthbook_js"].items()
                },
                "through_python_passthrough": {
                    k: summary(v) for k, v in seen["python_passthrough"].items()
                },
                "through_python_rewriter_noop_handler": {
                    k: summary(v) for k, v in seen["python_noop_handler"].items()
                },
                "through_edgepick_first_view_buffered_ms": {
                    "first_byte": round(first_view[0], 1),
                    "whole": round(first_view[1], 1),
                },
                "first_byte_gap_edgepick_minus_growthbook_js_ms": gaps("edgepick", "growthbook_js"),
                "first_byte_gap_edgepick_minus_direct_ms": gaps("edgepick", "direct"),
                "first_byte_gap_growthbook_js_minus_direct_ms": gaps("growthbook_js", "direct"),
                "first_byte_gap_python_passthrough_minus_direct_ms": gaps(
                    "python_passthrough", "direct"
                ),
                "first_byte_gap_edgepick_minus_python_passthrough_ms": gaps(
                    "edgepick", "python_passthrough"
                ),
                "first_byte_gap_python_noop_handler_minus_python_passthrough_ms": gaps(
                    "python_noop_handler", "python_passthrough"
                ),
                "whole_page_gap_edgepick_minus_growthbook_js_ms": gaps(
                    "edgepick", "growthbook_js", "whole"
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
