"""Load test of the origin collector and of the local edge (``wrangler dev``), on 127.0.0.1.

The load tool is ``wrk`` (Debian package ``wrk``, C, one event loop per thread: it costs the
2-core machine far less CPU than a Python load generator would), driven by ``bench/load.lua``:
requests are paced to a target rate, one connection per wrk thread, so every response is
matched to the request it answers. Every run is bounded (``wrk -d``, and a subprocess timeout).

- ``collector``: ``edgepick serve`` (uvicorn, SQLite store, fsync per batch) on a fresh store per
  level. Each request is a distinct pre-signed batch of ``--events-per-batch`` exposures (one
  page view's worth, as the edge ships them). Lost events = events in batches acknowledged with
  a 2xx that are not in the store afterwards (must be 0).
- ``edge``: ``wrangler dev`` (workerd, Python Worker, local KV written by ``edgepick publish``)
  in front of the sample store, shipping exposures to a real ``edgepick serve``. Each request is
  a new visitor on ``/``. Lost exposures = decisions served in pages (the
  ``data-edgepick-decision`` ids, plus the page-level slot decided with them: same request id)
  that never reached the store after ``waitUntil`` deliveries settle (must be 0).

Normal load (stated in docs/load.md): collector ``--collector-rate`` batches/s, edge
``--edge-rate`` page views/s; each is run at the ``--levels`` multiples (1x, 3x, 5x).
Prints one JSON document. Run: ``.venv/bin/python bench/load.py [collector|edge|all]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli.devstack import (
    ROOT,
    WRANGLER,
    Process,
    free_port,
    start_store,
    wait_http,
)
from core.events import encode_batch, sign
from origin.targets import quiet_env

LUA = ROOT / "bench" / "load.lua"
HOST = "127.0.0.1"
# the slots the fixture's home page fills, in order (hero is the 15-feature contextual slot)
PAGE_SLOTS = (("landing", 0), ("hero", 15), ("headline", 0), ("cta", 0), ("promo", 0))


def wrk_path() -> str | None:
    return shutil.which("wrk")


# ---------------------------------------------------------------- processes and measurements


def cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in the process group ``pgid``."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # pgrp
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def start_collector(port: int, store: Path, secret: str, logs: Path) -> Process:
    """``edgepick serve`` on 127.0.0.1:port; the secret goes through the environment."""
    process = Process(
        f"collector-{port}",
        [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
            "--store",
            str(store),
            "--registry",
            str(store.parent / "registry"),
        ],
        logs / f"collector-{port}.log",
        {**os.environ, "EDGEPICK_SECRET": secret},
    )
    wait_http(f"http://{HOST}:{port}/health", process, timeout=30)
    return process


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def stored_ids(store: Path) -> set[str]:
    """Exposure ids in the SQLite store (read-only; the collector may still be running)."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    try:
        return {row[0] for row in db.execute("SELECT id FROM exposures")}
    finally:
        db.close()


@dataclass
class WrkResult:
    duration_s: float
    completed: int
    errors: dict[str, int]
    latency_ms: dict[str, float]
    sent: dict[int, int]
    late: int
    max_late_ms: float
    exhausted: int
    responses: list[list[str]] = field(default_factory=list)  # [tid, index, status, ...]


def run_wrk(
    url: str, mode: str, work: Path, rate: float, threads: int, duration: float
) -> WrkResult:
    """One bounded wrk run; parses the result file ``bench/load.lua`` writes."""
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError("wrk not found: apt-get install wrk")
    args = [
        wrk,
        "-t",
        str(threads),
        "-c",
        str(threads),
        "-d",
        f"{duration:g}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        url,
        "--",
        mode,
        str(work),
        f"{rate:g}",
        str(threads),
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    lines = (work / "result.txt").read_text().splitlines()
    summary = [int(x) for x in lines[0].split()[1:]]
    lat = lines[1].split()[1:]
    result = WrkResult(
        duration_s=summary[0] / 1e6,
        completed=summary[1],
        errors=dict(
            zip(("connect", "read", "write", "status", "timeout"), summary[3:8], strict=True)
        ),
        latency_ms={
            name: round(float(value) / 1000, 2)
            for name, value in zip(
                ("p50", "p90", "p99", "p99_9", "min", "max", "mean"), lat, strict=True
            )
        },
        sent={},
        late=0,
        max_late_ms=0.0,
        exhausted=0,
    )
    for line in lines[2:]:
        parts = line.split()
        if parts[0] == "thread":
            result.sent[int(parts[1])] = int(parts[2])
            result.late += int(parts[3])
            result.max_late_ms = max(result.max_late_ms, float(parts[4]))
            result.exhausted += int(parts[5])
        elif parts[0] == "r":
            result.responses.append(parts[1:])
    return result


def common(result: WrkResult, rate: float, cpu: float) -> dict[str, Any]:
    ok = sum(1 for r in result.responses if 200 <= int(r[2]) < 300)
    return {
        "target_rps": rate,
        "achieved_rps": round(result.completed / result.duration_s, 1),
        "duration_s": round(result.duration_s, 2),
        "requests_sent": sum(result.sent.values()),
        "responses": result.completed,
        "responses_2xx": ok,
        "errors": {**result.errors, "non_2xx": result.completed - ok},
        "latency_ms": result.latency_ms,
        "sent_late_over_100ms": result.late,
        "max_late_ms": round(result.max_late_ms, 1),
        "server_cpu_cores": round(cpu / result.duration_s, 2),
    }


# ---------------------------------------------------------------- the collector


def page_batch(request_id: str, rng: random.Random, now_ms: int) -> list[dict[str, Any]]:
    """One page view's exposures, shaped like the edge's (hero carries 15 features)."""
    return [
        {
            "type": "exposure",
            "id": f"{request_id}-{pos}",
            "ts": now_ms,
            "visitor": f"v-{request_id}",
            "user": "",
            "slot": slot,
            "variant": f"{slot}-{pos}",
            "propensity": 0.25,
            "policy": "linear" if width else "thompson",
            "reason": "policy",
            "snapshot": "load-test",
            "features": [round(rng.random(), 3) for _ in range(width)],
            "decision_us": 300,
            "device": "mobile",
            "country": "DE",
        }
        for pos, (slot, width) in enumerate(PAGE_SLOTS)
    ]


def write_batches(
    work: Path, secret: bytes, threads: int, per_thread: int, per_batch: int, tag: str
) -> dict[tuple[int, int], list[str]]:
    """Pre-signed distinct batches, ``work/requests-<tid>.txt``; returns their event ids."""
    rng = random.Random(tag)
    now_ms = int(time.time() * 1000)
    ids: dict[tuple[int, int], list[str]] = {}
    for tid in range(threads):
        with (work / f"requests-{tid}.txt").open("w") as out:
            for k in range(per_thread):
                events: list[dict[str, Any]] = []
                page = 0
                while len(events) < per_batch:
                    events += page_batch(f"{tag}t{tid}k{k}p{page}", rng, now_ms)
                    page += 1
                events = events[:per_batch]
                body = encode_batch(events)
                out.write(f"{sign(body, secret)}\t{body.decode()}\n")
                ids[(tid, k)] = [e["id"] for e in events]
    return ids


def collector_level(
    rate: float, duration: float, threads: int, per_batch: int, logs: Path
) -> dict[str, Any]:
    secret = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="edgepick-load-") as tmp:
        work = Path(tmp)
        per_thread = math.ceil(rate * duration / threads * 1.1) + 5
        tag = secrets.token_hex(3)
        ids = write_batches(work, secret.encode(), threads, per_thread, per_batch, tag)
        port = free_port()
        store = work / "events.db"
        collector = start_collector(port, store, secret, logs)
        try:
            cpu0 = cpu_seconds(collector.popen.pid)
            result = run_wrk(f"http://{HOST}:{port}", "collector", work, rate, threads, duration)
            cpu = cpu_seconds(collector.popen.pid) - cpu0
            health = get_json(f"http://{HOST}:{port}/health")
        finally:
            collector.stop()
        stored = stored_ids(store)
    sent = {i for (tid, k), batch in ids.items() if k < result.sent.get(tid, 0) for i in batch}
    acked: set[str] = set()
    duplicates = 0
    for tid, index, status, _accepted, dups in result.responses:
        key = (int(tid), int(index))
        if 200 <= int(status) < 300 and key in ids:
            acked.update(ids[key])
            duplicates += int(dups) if dups.isdigit() else 0
    out = common(result, rate, cpu)
    out["events"] = {
        "per_batch": per_batch,
        "sent": len(sent),
        "acknowledged": len(acked),
        "stored": len(stored),
        "lost": len(acked - stored),
        "stored_unacknowledged": len(stored - acked),  # in flight when wrk stopped: not lost
        "stored_never_sent": len(stored - sent),
        "duplicates_reported": duplicates,
        "acknowledged_per_s": round(len(acked) / result.duration_s, 1),
    }
    out["collector_counters"] = health.get("counters", {})
    out["batches_ran_out"] = result.exhausted
    return out


def collector_bench(
    normal: float, levels: list[float], duration: float, threads: int, per_batch: int, logs: Path
) -> dict[str, Any]:
    runs = {}
    for level in levels:
        runs[f"{level:g}x"] = collector_level(normal * level, duration, threads, per_batch, logs)
    return {
        "normal_batches_per_s": normal,
        "events_per_batch": per_batch,
        "normal_events_per_s": normal * per_batch,
        "duration_s": duration,
        "connections": threads,
        "levels": runs,
    }


# ---------------------------------------------------------------- the edge


@dataclass
class EdgeStack:
    port: int
    collector_port: int
    store: Path
    processes: list[Process]


def frozen_worker(work: Path) -> Path:
    """The worker bundled into ``work/worker`` with a wrangler config of its own (no build step).

    ``wrangler dev`` run on the repository's wrangler.toml rebuilds and restarts the worker
    whenever a file under core/ or edge/ changes; a load run must measure one fixed build.
    """
    import tomllib

    from compile.bundle import build

    build(work / "worker")
    repo = tomllib.loads((ROOT / "wrangler.toml").read_text())
    kv = repo["kv_namespaces"][0]
    config = work / "wrangler.toml"
    config.write_text(
        'name = "edgepick-load"\n'
        'main = "worker/entry_local.py"\n'
        f"compatibility_date = {json.dumps(repo['compatibility_date'])}\n"
        f"compatibility_flags = {json.dumps(repo['compatibility_flags'])}\n"
        "[[kv_namespaces]]\n"
        f"binding = {json.dumps(kv['binding'])}\n"
        f"id = {json.dumps(kv['id'])}\n"
    )
    return config


def start_worker(
    config: Path, port: int, persist: Path, variables: Mapping[str, str], logs: Path
) -> Process:
    """``wrangler dev`` on 127.0.0.1:port for ``config`` (as ``devstack.start_wrangler``)."""
    args = [
        str(WRANGLER),
        "dev",
        "--config",
        str(config),
        "--ip",
        HOST,
        "--port",
        str(port),
        "--inspector-port",
        str(free_port()),
        "--persist-to",
        str(persist),
    ]
    for name, value in variables.items():
        args += ["--var", f"{name}:{value}"]
    process = Process(
        "wrangler dev", args, logs / f"wrangler-{port}.log", quiet_env(), config.parent
    )
    wait_http(f"http://{HOST}:{port}/_edgepick/health", process, timeout=120, ok=(200, 503))
    return process


@contextmanager
def edge_stack(work: Path, logs: Path) -> Iterator[EdgeStack]:
    """Sample store + collector + ``wrangler dev`` with the fixture snapshot in local KV."""
    from compile.build import build_snapshot

    secret = secrets.token_hex(16)
    config = frozen_worker(work)
    snapshot = work / "site.snap"
    snapshot.write_bytes(
        build_snapshot(ROOT / "fixtures" / "site.toml", ROOT / "fixtures" / "model.json")
    )
    persist = work / "kv"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "publish",
            str(snapshot),
            "--target",
            f"wrangler:{persist}",
            "--registry",
            str(work / "registry"),
            "--message",
            "load test",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=180,
    )
    processes: list[Process] = []
    try:
        origin_port, collector_port, port = free_port(), free_port(), free_port()
        processes.append(start_store(origin_port, logs))
        store = work / "events.db"
        processes.append(start_collector(collector_port, store, secret, logs))
        variables: Mapping[str, str] = {
            "ORIGIN_URL": f"http://{HOST}:{origin_port}",
            "COLLECTOR_URL": f"http://{HOST}:{collector_port}/v1/events",
            "EVENTS_SECRET": secret,
            "COOKIE_KEYS": f"load:{secrets.token_hex(16)}",
            "PREVIEW_KEY": secrets.token_hex(16),
            "COOKIE_SECURE": "false",
        }
        processes.append(start_worker(config, port, persist, variables, logs))
        wait_http(f"http://{HOST}:{port}/_edgepick/health", processes[-1], timeout=60)
        yield EdgeStack(port, collector_port, store, processes)
    finally:
        for process in reversed(processes):
            process.stop()


def settle(store: Path, timeout: float, quiet: float = 3.0) -> float:
    """Wait until the store's exposure count stops changing for ``quiet`` s; seconds waited."""
    start = time.monotonic()
    last, since = -1, time.monotonic()
    while time.monotonic() - start < timeout:
        count = len(stored_ids(store))
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
        time.sleep(0.5)
    return round(time.monotonic() - start, 1)


def edge_level(
    stack: EdgeStack, rate: float, duration: float, threads: int, work: Path
) -> dict[str, Any]:
    pgids = [p.popen.pid for p in stack.processes]
    health_url = f"http://{HOST}:{stack.port}/_edgepick/health"
    errors_before = int(get_json(health_url).get("errors", 0))
    cpu0 = sum(cpu_seconds(g) for g in pgids)
    result = run_wrk(f"http://{HOST}:{stack.port}", "edge", work, rate, threads, duration)
    cpu = sum(cpu_seconds(g) for g in pgids) - cpu0
    waited = settle(stack.store, timeout=90)
    stored = stored_ids(stack.store)
    by_request: dict[str, set[str]] = {}
    for event_id in stored:
        by_request.setdefault(event_id.rsplit("-", 1)[0], set()).add(event_id)
    served = lost = personalized = 0
    for response in result.responses:
        status, marks = int(response[2]), set(response[3:])
        if not 200 <= status < 300 or not marks:
            continue
        personalized += 1
        request_ids = {m.rsplit("-", 1)[0] for m in marks}
        expected = len(marks) + 1  # the page-level slot (landing) is decided with them
        found = set().union(*(by_request.get(r, set()) for r in request_ids))
        served += expected
        lost += max(expected - len(found), len(marks - found))
    out = common(result, rate, cpu)
    out["pages_personalized"] = personalized
    out["pages_served_unpersonalized"] = out["responses_2xx"] - personalized  # fail-open
    out["exposures"] = {
        "served": served,
        "stored_for_served_pages": served - lost,
        "lost": lost,
        "settle_wait_s": waited,
    }
    health = get_json(health_url)
    out["edge_health"] = {k: health.get(k) for k in ("ok", "errors", "last_error", "requests")}
    out["edge_errors_this_level"] = int(health.get("errors", 0)) - errors_before  # fail-open
    counters = get_json(f"http://{HOST}:{stack.collector_port}/health").get("counters", {})
    out["collector_counters_cumulative"] = counters
    return out


def edge_bench(
    normal: float, levels: list[float], duration: float, threads: int, logs: Path
) -> dict[str, Any]:
    if not WRANGLER.exists():
        return {"skipped": "node_modules/.bin/wrangler missing: run `make setup`"}
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edgepick-load-edge-") as tmp:
        work = Path(tmp)
        with edge_stack(work, logs) as stack:
            for _ in range(5):  # warm the isolate: snapshot decoded, Pyodide modules loaded
                urllib.request.urlopen(f"http://{HOST}:{stack.port}/", timeout=60).read()
            settle(stack.store, timeout=30)
            for level in levels:
                runs[f"{level:g}x"] = edge_level(stack, normal * level, duration, threads, work)
    return {
        "normal_pages_per_s": normal,
        "duration_s": duration,
        "connections": threads,
        "levels": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=("collector", "edge", "all"), default="all")
    parser.add_argument("--collector-rate", type=float, default=40.0, help="normal batches/s")
    parser.add_argument("--events-per-batch", type=int, default=5)
    parser.add_argument("--edge-rate", type=float, default=10.0, help="normal page views/s")
    parser.add_argument("--levels", default="1,3,5", help="multiples of the normal load")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per level")
    parser.add_argument("--collector-connections", type=int, default=16)
    parser.add_argument("--edge-connections", type=int, default=32)
    parser.add_argument("--logs", default=str(ROOT / "out" / "logs" / "load"))
    args = parser.parse_args()
    levels = [float(x) for x in args.levels.split(",")]
    logs = Path(args.logs)
    out: dict[str, Any] = {
        "benchmark": "load",
        "tool": subprocess.run([wrk_path() or "wrk", "--version"], capture_output=True, text=True)
        .stdout.split("\n")[0]
        .strip(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "host": HOST,
    }
    if args.what in ("collector", "all"):
        out["collector"] = collector_bench(
            args.collector_rate,
            levels,
            args.duration,
            args.collector_connections,
            args.events_per_batch,
            logs,
        )
    if args.what in ("edge", "all"):
        out["edge"] = edge_bench(args.edge_rate, levels, args.duration, args.edge_connections, logs)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
