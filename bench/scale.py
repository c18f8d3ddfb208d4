"""The origin at scale: lake rounds on DuckDB, incremental rounds, collectors behind JetStream.

    .venv/bin/python bench/scale.py [--sizes 250000,500000,1000000,2000000] [--history 4000000]
        [--stream-seconds 10] [--only round|incremental|stream]

Prints one JSON document. Every measurement runs in a child process of its own, so its peak
RSS (``ru_maxrss``) is the measured work's plus the interpreter with pyarrow and DuckDB loaded
(``baseline_rss_mb``, measured the same way with no work). What each timed region holds:

- ``rounds``: a lake of N exposures (+ about 9% clicks) over ``days`` days, written beforehand
  (not timed); the region is one ``LakeRounds.round`` with no state (the aggregation SQL over
  every segment on DuckDB, the sums into ``Aggregates``, the state saved) plus ``learn``.
- ``incremental``: a history lake, its state brought up to date (not timed); then 10,000 new
  events (exposures and clicks, in the last hour) written as new segments (not timed); the
  region is one ``LakeRounds.round`` (the new segments read, the dirty hours recomputed, every
  window summed) plus ``learn``.
- ``profiles``: a store of N users (``write_users``: identifies, page views, exposures,
  conversions, written directly); the region builds every user's profile and encodes it as
  sync publishes it, streamed (``origin.stitch.iter_profiles``, what sync runs) and, up to
  ``--old-profiles-up-to`` users, all in memory (``build_profiles``, what it ran before).
- ``report``: a lake of N exposures over 10 days (as ``rounds``); the region is
  ``origin.lake.report.lake_facts`` (the report's round, the visitor cells, latency, volume on
  DuckDB) plus the whole page (``origin.report.write``, an empty hot buffer), twice: the second
  report finds its round state up to date.
- ``stream``: nats-server (JetStream, file storage, ``sync_interval: always``), two collectors
  (``edgepick lake serve``) and one consumer (``edgepick lake consume``); ``wrk`` (4 threads,
  one connection each, per collector) POSTs pre-signed, distinct 100-event batches for the stated
  seconds; events/s = events in batches the collectors answered 200 (wrk's responses, matched to
  their batches) over wrk's duration; then the consumer drains into SQLite and the bench
  counts what is missing.

Events are real decisions of the fixture site (``origin.lake.traffic``), a pool of them repeated
with new ids, visitors and times (numpy, so generating millions stays fast).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

START_MS = 1_790_000_000_000
DAY_MS = 86_400_000


def _site() -> Any:
    from compile.site import compile_site, load_model, load_toml

    fixtures = ROOT / "fixtures"
    config = load_toml(fixtures / "site.toml")
    return compile_site(config, load_model(fixtures / "model.json"), str(fixtures / "site.toml"))


def _pool() -> pa.Table:
    """Lake rows of real decisions: about 20,000 exposures of the fixture site."""
    from compile.build import build_snapshot
    from core.engine import Engine
    from origin.lake.schema import table
    from origin.lake.traffic import events

    fixtures = ROOT / "fixtures"
    engine = Engine.from_bytes(build_snapshot(fixtures / "site.toml", fixtures / "model.json"))
    found = [e for e in events(engine, 2500, START_MS, seed=7) if e["type"] == "exposure"]
    return table(found)


def synthetic(pool: pa.Table, n: int, start_ms: int, span_ms: int, seed: int, tag: str) -> pa.Table:
    """``n`` exposures drawn from ``pool`` with new ids, visitors and times, plus ~9% clicks."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, pool.num_rows, n)
    rows = pool.take(pa.array(pick))
    ts = np.sort(start_ms + rng.integers(0, span_ms, n))
    ids = np.char.add(f"{tag}-", np.arange(n).astype(str))
    visitors = np.char.add("v", rng.integers(0, max(1, n // 4), n).astype(str))
    rows = rows.set_column(rows.schema.get_field_index("id"), "id", pa.array(ids))
    rows = rows.set_column(rows.schema.get_field_index("ts"), "ts", pa.array(ts))
    rows = rows.set_column(rows.schema.get_field_index("visitor"), "visitor", pa.array(visitors))
    rows = pa.Table.from_arrays(rows.columns, schema=pool.schema)
    clicked = np.flatnonzero(rng.random(n) < 0.09)
    k = len(clicked)
    clicks = {
        "type": pa.array(["click"] * k),
        "id": pa.array(np.char.add(ids[clicked], ":click:c")),
        "ts": pa.array(ts[clicked] + rng.integers(500, 600_000, k)),
        "visitor": pa.array(visitors[clicked]),
        "decision": pa.array(ids[clicked]),
        "value": pa.array(np.zeros(k)),
        "payload": pa.array(["{}"] * k),
    }
    schema = pool.schema
    columns = [clicks.get(f.name, pa.nulls(k, f.type)) for f in schema]
    return pa.concat_tables([rows, pa.Table.from_arrays(columns, schema=schema)])


def write_lake(root: Path, exposures: int, days: int, seed: int = 0) -> dict[str, Any]:
    """A lake of ``exposures`` over ``days`` days, written a day at a time."""
    from origin.lake.segments import Lake

    lake = Lake(root)
    pool = _pool()
    manifest = lake.manifest()
    per_day = exposures // days
    rows = 0
    for day in range(days):
        part = synthetic(pool, per_day, START_MS + day * DAY_MS, DAY_MS, seed + day, f"d{day}")
        lake.write_segments(manifest, part)
        rows += part.num_rows
    lake.save(manifest)
    return {"rows": rows, "exposures": per_day * days, "segments": len(manifest.segments)}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_round(root: Path) -> dict[str, Any]:
    """Child: one round on the lake at ``root`` (timed), then learn (timed)."""
    import duckdb  # noqa: F401 (imported before the timed region, as in a running sync loop)

    from origin.lake.engines import DuckDBEngine
    from origin.lake.rounds import LakeRounds
    from origin.lake.segments import Lake
    from origin.learn import learn, widths

    site = _site()
    rounds = LakeRounds(Lake(root), DuckDBEngine(threads=2))
    started = time.perf_counter()
    found = rounds.round(widths(site))
    aggregated = time.perf_counter()
    learn(site, found.learnable)
    done = time.perf_counter()
    return {
        "round_s": round(done - started, 3),
        "aggregate_s": round(aggregated - started, 3),
        "learn_s": round(done - aggregated, 3),
        "rows": found.rows,
        "policy_draws": found.learnable_rows,
        "files_read": found.files_read,
        "recomputed_hours": (found.recomputed[1] - found.recomputed[0]) // 3_600_000
        if found.recomputed
        else 0,
        "peak_rss_mb": round(_rss_mb(), 1),
        "load_average_1min": round(os.getloadavg()[0], 2),  # others' work on the VM meanwhile
    }


def add_new(root: Path, n: int) -> dict[str, Any]:
    """Child: ``n`` new events (exposures and clicks) in the lake's last hour, as new segments."""
    from origin.lake.segments import HOUR_MS, Lake

    lake = Lake(root)
    manifest = lake.manifest()
    last = max(s.max_ts for s in manifest.segments)
    part = synthetic(_pool(), int(n / 1.09), last - last % HOUR_MS, HOUR_MS - 1, 99, "new")
    lake.write_segments(manifest, part)
    lake.save(manifest)
    return {"new_events": part.num_rows}


def _child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench child {args} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_rounds(sizes: list[int], days: int, work: Path) -> list[dict[str, Any]]:
    curve = []
    for size in sizes:
        root = work / f"lake-{size}"
        written = _child("write", str(root), str(size), str(days))
        measured = _child("round", str(root))
        curve.append({"exposures": size, "days": days, **written, **measured})
        print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
    return curve


def bench_incremental(history: int, days: int, work: Path) -> dict[str, Any]:
    root = work / "history"
    written = _child("write", str(root), str(history), str(days))
    full = _child("round", str(root))
    added = _child("add", str(root), "10000")
    incremental = _child("round", str(root))
    return {"history": written, "first_round": full, **added, "incremental_round": incremental}


def write_users(path: Path, users: int, seed: int = 0) -> dict[str, Any]:
    """A SQLite store (the collector's schema) of ``users`` users, written with ``executemany``
    (the collector's path would take hours): each user identified on 1 or 2 visitors (a third
    have a second device), 3 page views per visitor over a week (category pages of the fixture
    site), 2 exposures per visitor (hero, policy draws), and a conversion naming a decision for
    3% of them (the ``buyer`` flag needs its exposure's owner)."""
    import sqlite3

    from origin.store import SqliteStore

    SqliteStore(path).close()  # the schema
    rng = np.random.default_rng(seed)
    paths = ("/c/running", "/c/hiking", "/c/yoga", "/p/run-1", "/cart", "/")
    db = sqlite3.connect(str(path))
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    counts = {"identifies": 0, "page_views": 0, "exposures": 0, "outcomes": 0}
    chunk = 50_000
    for lo in range(0, users, chunk):
        ids, views, shown, bought = [], [], [], []
        for u in range(lo, min(users, lo + chunk)):
            visitors = [f"v{u}"] + ([f"w{u}"] if u % 3 == 0 else [])
            start = START_MS + int(rng.integers(0, 7 * DAY_MS))
            for n, visitor in enumerate(visitors):
                ids.append((f"i{u}-{n}", start + n, visitor, f"u{u}", "[]"))
                for k in range(3):
                    ts = start + k * 600_000 + n * 3_600_000
                    path_ = paths[(u + k) % len(paths)]
                    views.append((f"pv{u}-{n}-{k}", ts, visitor, "", path_, path_.split("/")[-1]))
                for k in range(2):
                    eid = f"e{u}-{n}-{k}"
                    shown.append(
                        (
                            eid,
                            start + k,
                            visitor,
                            "",
                            "hero",
                            "hero-a",
                            0.5,
                            "thompson",
                            "policy",
                            "snap",
                            "[]",
                            100,
                            "desktop",
                            "DE",
                            "/",
                        )
                    )
            if u % 33 == 0:
                bought.append((f"c{u}", "conversion", start + 5_000, f"v{u}", f"e{u}-0-0", 40.0))
        db.executemany("INSERT INTO identifies VALUES (?, ?, ?, ?, ?)", ids)
        db.executemany("INSERT INTO page_views VALUES (?, ?, ?, ?, ?, ?)", views)
        db.executemany(
            "INSERT INTO exposures (id, ts, visitor, user, slot, variant, propensity, policy, "
            "reason, snapshot, features, decision_us, device, country, path) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            shown,
        )
        db.executemany("INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?)", bought)
        db.commit()
        for table, rows in (
            ("identifies", ids),
            ("page_views", views),
            ("exposures", shown),
            ("outcomes", bought),
        ):
            counts[table] += len(rows)
    db.close()
    return {"users": users, **counts, "store_mb": round(path.stat().st_size / 2**20, 1)}


def build_all_profiles(path: Path, streamed: bool) -> dict[str, Any]:
    """Child: every user's profile from the store at ``path``, each encoded as sync publishes
    it (timed); streamed (``iter_profiles``, what sync runs) or all in memory
    (``build_profiles``, what it ran before)."""
    from core.profile import encode_profile
    from origin.stitch import build_profiles, iter_profiles
    from origin.store import SqliteStore

    signals = _site().signals
    store = SqliteStore(path)
    started = time.perf_counter()
    n = size = 0
    found = iter_profiles(store, signals) if streamed else build_profiles(store, signals).items()
    for _user, state in found:
        n += 1
        size += len(encode_profile(state))
    return {
        "mode": "streamed" if streamed else "in memory",
        "profiles": n,
        "seconds": round(time.perf_counter() - started, 2),
        "encoded_mb": round(size / 2**20, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def bench_profiles(sizes: list[int], old_up_to: int, work: Path) -> list[dict[str, Any]]:
    curve = []
    for size in sizes:
        path = work / f"users-{size}.db"
        written = _child("users", str(path), str(size))
        runs = [_child("profiles", str(path), "streamed")]
        if size <= old_up_to:
            runs.append(_child("profiles", str(path), "memory"))
        curve.append({**written, "runs": runs})
        print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
        path.unlink()
    return curve


def report_from_lake(root: Path) -> dict[str, Any]:
    """Child: ``edgepick report`` from the lake at ``root`` (timed: the lake's facts, then the
    whole page with an empty hot buffer, 50 bootstrap resamples)."""
    import duckdb  # noqa: F401 (imported before the timed region)

    from compile.build import build_snapshot
    from origin.lake.report import lake_facts
    from origin.lake.segments import Lake
    from origin.registry import Registry
    from origin.report import write
    from origin.store import SqliteStore

    fixtures = ROOT / "fixtures"
    registry = Registry(root / "registry")
    registry.add(build_snapshot(fixtures / "site.toml", fixtures / "model.json"))
    store = SqliteStore(root / "hot.db")
    started = time.perf_counter()
    facts = lake_facts(Lake(root), registry)
    read = time.perf_counter()
    report = write(store, registry, root / "report.html", resamples=50, facts=facts, ope_days=7)
    done = time.perf_counter()
    return {
        "report_s": round(done - started, 2),
        "lake_facts_s": round(read - started, 2),
        "sections_s": round(done - read, 2),
        "exposures": facts.counts.get("exposure", 0),
        "visitor_cells": len(facts.cells),
        "arms": len(facts.arms),
        "figures": report.figures,
        "peak_rss_mb": round(_rss_mb(), 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def bench_report(sizes: list[int], days: int, work: Path) -> list[dict[str, Any]]:
    curve = []
    for size in sizes:
        root = work / f"report-lake-{size}"
        written = _child("write", str(root), str(size), str(days))
        first = _child("report", str(root))
        again = _child("report", str(root))  # the report's round state kept: nothing recomputed
        curve.append({"exposures": size, "days": days, **written, "first": first, "again": again})
        print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
    return curve


COLLECTORS = 2
PER_BATCH = 100
WRK_THREADS = 4  # per collector; one connection each (bench/load.lua paces and matches replies)


def _level(work: Path, url: str, rate: float, seconds: float) -> dict[str, Any]:
    """One bounded load level: COLLECTORS collectors, each driven by its own paced wrk."""
    import secrets
    import threading

    from bench.load import HOST, run_wrk, write_batches
    from cli.devstack import Process, free_port, wait_http
    from origin.store import SqliteStore

    secret = secrets.token_hex(16)
    env = {**os.environ, "EDGEPICK_SECRET": secret, "EDGEPICK_NATS_URL": url}
    tag = secrets.token_hex(3)
    store = work / f"events-{tag}.db"
    edgepick = [sys.executable, "-m", "cli.main", "lake"]
    procs, ports, dirs, ids = [], [], [], []
    for n in range(COLLECTORS):
        port = free_port()
        log = work / f"collector-{port}.log"
        procs.append(Process(f"c{n}", [*edgepick, "serve", "--port", str(port)], log, env))
        wait_http(f"http://{HOST}:{port}/health", procs[-1], timeout=30)
        ports.append(port)
        dirs.append(work / f"wrk-{tag}-{n}")
        dirs[-1].mkdir()
        per_thread = int(rate * seconds / WRK_THREADS * 1.1) + 5
        batches = write_batches(
            dirs[-1], secret.encode(), WRK_THREADS, per_thread, PER_BATCH, f"{tag}{n}"
        )
        ids.append(batches)
    consumer = Process(
        "consumer", [*edgepick, "consume", "--store", str(store)], work / "k.log", env
    )
    results: list[Any] = [None] * COLLECTORS

    def drive(n: int) -> None:
        url = f"http://{HOST}:{ports[n]}"
        results[n] = run_wrk(url, "collector", dirs[n], rate, WRK_THREADS, seconds)

    try:
        drivers = [threading.Thread(target=drive, args=(n,)) for n in range(COLLECTORS)]
        for driver in drivers:
            driver.start()
        for driver in drivers:
            driver.join()
        acked: set[str] = set()
        for n, result in enumerate(results):
            for tid, index, status, *_ in result.responses:
                if status == "200" and (int(tid), int(index)) in ids[n]:
                    acked.update(ids[n][(int(tid), int(index))])
        started = time.monotonic()
        stored: set[str] = set()
        while time.monotonic() - started < 120 and not acked <= stored:
            time.sleep(1.0)
            stored = SqliteStore(store).ids()
        drained = time.monotonic() - started
    finally:
        for proc in (*procs, consumer):
            proc.stop()
    duration = max(r.duration_s for r in results)
    return {
        "offered_events_per_s": rate * COLLECTORS * PER_BATCH,
        "accepted_events_per_s": round(len(acked) / duration, 1),
        "acknowledged": len(acked),
        "stored": len(stored),
        "lost": len(acked - stored),
        "non_2xx": sum(r.completed - sum(1 for x in r.responses if x[2] == "200") for r in results),
        "latency_ms_p50_p99": [[r.latency_ms["p50"], r.latency_ms["p99"]] for r in results],
        "consumer_drained_s_after_load": round(drained, 1),
    }


def bench_stream(work: Path, seconds: float, normal: float) -> dict[str, Any]:
    """Collectors behind JetStream at 1x and 5x a stated normal load (paced wrk, bounded)."""
    from tests.origin.lake.natsd import nats_server

    out: dict[str, Any] = {
        "normal_events_per_s": normal * COLLECTORS * PER_BATCH,
        "collectors": COLLECTORS,
        "events_per_batch": PER_BATCH,
        "seconds": seconds,
    }
    for level in (1, 5):
        root = work / f"nats-{level}"
        root.mkdir()
        with nats_server(root) as url:
            out[f"{level}x"] = _level(root, url, normal * level, seconds)
        print(json.dumps(out[f"{level}x"]), file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="250000,500000,1000000,2000000")
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--history", type=int, default=4_000_000)
    parser.add_argument("--history-days", type=int, default=20)
    parser.add_argument("--stream-seconds", type=int, default=10)
    parser.add_argument("--only", choices=("round", "incremental", "stream", "profiles", "report"))
    parser.add_argument("--users", default="100000,250000,500000,1000000")
    parser.add_argument("--old-profiles-up-to", type=int, default=250_000)
    parser.add_argument("--report-sizes", default="1000000,4000000")
    parser.add_argument("--normal", type=float, default=20.0, help="batches/s per collector")
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        kind, rest = args.child[0], args.child[1:]
        if kind == "write":
            result = write_lake(Path(rest[0]), int(rest[1]), int(rest[2]))
        elif kind == "round":
            result = one_round(Path(rest[0]))
        elif kind == "add":
            result = add_new(Path(rest[0]), int(rest[1]))
        elif kind == "users":
            result = write_users(Path(rest[0]), int(rest[1]))
        elif kind == "profiles":
            result = build_all_profiles(Path(rest[0]), rest[1] == "streamed")
        elif kind == "report":
            result = report_from_lake(Path(rest[0]))
        else:
            from origin.lake.engines import DuckDBEngine  # noqa: F401 (the baseline loads it)

            result = {"peak_rss_mb": round(_rss_mb(), 1)}
        print(json.dumps(result))
        return
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
    out["baseline_rss_mb"] = _child("baseline")["peak_rss_mb"]
    with tempfile.TemporaryDirectory(prefix="edgepick-scale-") as tmp:
        work = Path(tmp)
        if args.only in (None, "round"):
            sizes = [int(s) for s in args.sizes.split(",")]
            out["rounds"] = bench_rounds(sizes, args.days, work)
        if args.only in (None, "incremental"):
            out["incremental"] = bench_incremental(args.history, args.history_days, work)
        if args.only in (None, "stream"):
            out["stream"] = bench_stream(work, args.stream_seconds, args.normal)
        if args.only in (None, "profiles"):
            users = [int(s) for s in args.users.split(",")]
            out["profiles"] = bench_profiles(users, args.old_profiles_up_to, work)
        if args.only in (None, "report"):
            sizes = [int(s) for s in args.report_sizes.split(",")]
            out["report"] = bench_report(sizes, 10, work)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
