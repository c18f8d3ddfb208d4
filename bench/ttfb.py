"""Time to first byte through the worker against the origin's own, on a streaming origin: real
``wrangler dev`` (workerd, HTMLRewriter) in front of an origin on 127.0.0.1 that sends its page's
head at once and its tail ``--delay`` seconds later. Prints one JSON document.

Timed (wall clock, this process): from sending the request to the first byte of the body, for
the origin directly and through the worker, interleaved; and the whole page. The worker's first
view of the path is buffered (it learns which slots the page holds: ``edge/presence.py``) and
reported apart; every later view streams.

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

from cli.devstack import free_port, pinned_worker, start_wrangler  # noqa: E402
from compile.site import compile_site, load_toml  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds between head and tail")
    args = parser.parse_args()
    origin = origin_server(args.delay)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        snapshot = encode_snapshot(compile_site(load_toml(ROOT / "fixtures" / "site.toml")))
        registry = Registry(folder / "registry")
        publish(snapshot, [parse_target(f"wrangler:{folder / 'kv'}")], registry, author="bench")
        variables = {
            "ORIGIN_URL": f"http://127.0.0.1:{origin.server_address[1]}",
            "COOKIE_KEYS": "k1:ttfb-cookie-secret",
            "SNAPSHOT_TTL_SECONDS": "60",
        }
        worker = start_wrangler(
            port, folder / "kv", variables, folder, config=pinned_worker(folder / "worker")
        )
        try:
            first_view = timed_get(port, "/shop")  # buffered: the isolate learns the page
            direct: dict[str, list[float]] = {"first_byte": [], "whole": []}
            through: dict[str, list[float]] = {"first_byte": [], "whole": []}
            for _ in range(args.samples):
                for side, target in ((direct, origin.server_address[1]), (through, port)):
                    first, whole, status = timed_get(int(target), "/shop")
                    assert status == 200, status
                    side["first_byte"].append(first)
                    side["whole"].append(whole)
        finally:
            worker.stop()
            origin.shutdown()
    gaps = [t - d for t, d in zip(through["first_byte"], direct["first_byte"], strict=True)]
    print(
        json.dumps(
            {
                "origin_delay_between_head_and_tail_ms": args.delay * 1000,
                "samples": args.samples,
                "direct": {k: summary(v) for k, v in direct.items()},
                "through_worker_streamed": {k: summary(v) for k, v in through.items()},
                "through_worker_first_view_buffered_ms": {
                    "first_byte": round(first_view[0], 1),
                    "whole": round(first_view[1], 1),
                },
                "first_byte_gap_worker_minus_direct_ms": summary(gaps),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
