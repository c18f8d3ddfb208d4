"""The `edgepick` subcommands of the signal work (registered by cli.main):

- ``edgepick propensity evaluate``: the purchase-propensity model on synthetic shoppers
  (``origin.shoppers``): AUC and calibration on held-out users, as JSON;
- ``edgepick propensity train``: the model from a real store (profiles as of a cutoff, purchases
  within the horizon after it), written as JSON;
- ``edgepick propensity profiles``: every user's stitched profile with its
  ``propensity:<bucket>`` flag, published to the targets (``profile/<user>``, as sync does);
- ``edgepick precompute SNAPSHOT``: the off-peak job, decisions for the most frequent visitor
  contexts as a table under ``precomputed/<snapshot id>`` (``origin.precompute``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from core.model import Signals

DAY_MS = 86_400_000


def _site_signals(config: str) -> Signals:
    from compile.site import compile_site, load_toml

    return compile_site(load_toml(Path(config))).signals


def _evaluate(args: argparse.Namespace) -> int:
    from origin.propensity import train, training_set
    from origin.shoppers import CUTOFF_MS, HORIZON_MS, shop
    from origin.store import SqliteStore

    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "events.db")
        shop(store, args.users, args.seed)
        users, x, y = training_set(store, _site_signals(args.config), CUTOFF_MS, HORIZON_MS)
        store.close()
    model, report = train(x, y, users)
    if args.out:
        Path(args.out).write_text(model.to_json())
    print(json.dumps({"data": f"synthetic shoppers, seed {args.seed}", **report}, indent=1))
    return 0


def _train(args: argparse.Namespace) -> int:
    from origin.propensity import train, training_set
    from origin.store import SqliteStore

    horizon = int(args.horizon_days * DAY_MS)
    cutoff = args.cutoff_ms or int(time.time() * 1000) - horizon
    store = SqliteStore(args.store)
    users, x, y = training_set(store, _site_signals(args.config), cutoff, horizon)
    store.close()
    if len(users) < 50 or not 0 < y.sum() < len(y):
        print(
            f"edgepick: {len(users)} users and {int(y.sum())} buyers before/after the cutoff: "
            "too few to learn a propensity (need 50 users, buyers and non-buyers)",
            file=sys.stderr,
        )
        return 1
    model, report = train(x, y, users)
    Path(args.out).write_text(model.to_json())
    print(json.dumps({"cutoff_ms": cutoff, **report}, indent=1))
    return 0


def _profiles(args: argparse.Namespace) -> int:
    from core.profile import encode_profile, profile_key
    from origin.propensity import PropensityModel, flags_for
    from origin.stitch import build_profiles
    from origin.store import SqliteStore
    from origin.targets import parse_target

    model = PropensityModel.from_json(Path(args.model).read_text())
    store = SqliteStore(args.store)
    profiles = build_profiles(store, _site_signals(args.config))
    store.close()
    flagged = flags_for(profiles, model, int(time.time()))
    items = {profile_key(user): encode_profile(state) for user, state in flagged.items()}
    for spec in args.target or []:
        parse_target(spec).put_many(items)
    counts: dict[str, int] = {}
    for state in flagged.values():
        bucket = next(f for f in state.flags if f.startswith("propensity:"))
        counts[bucket] = counts.get(bucket, 0) + 1
    print(json.dumps({"profiles": len(items), "targets": args.target or [], **counts}))
    return 0


def _precompute(args: argparse.Namespace) -> int:
    from core.engine import Engine
    from core.precomputed import mode_problem
    from origin.population import population
    from origin.precompute import demo_requests, hit_rate, precompute, table_key
    from origin.targets import parse_target

    if mode_problem(args.mode):
        print(f"edgepick: {mode_problem(args.mode)}", file=sys.stderr)
        return 1
    engine = Engine.from_bytes(Path(args.snapshot).read_bytes())
    now = int(time.time())
    job = precompute(engine, args.visitors, args.seed, now, args.size, args.mode)
    others = population(args.visitors, args.seed + 1, prefix="check")
    rate = hit_rate(engine, job.table, list(demo_requests(engine, others, now)))
    for spec in args.target or []:
        parse_target(spec).put(table_key(engine.snapshot_id), job.blob)
    report = {
        "key": table_key(engine.snapshot_id),
        "mode": args.mode,
        "entries": len(job.table),
        "bytes": len(job.blob),
        "contexts": job.contexts,
        "distinct_contexts": job.distinct,
        "hit_rate_on_other_demo_traffic": round(rate, 4),
        "targets": args.target or [],
    }
    print(json.dumps(report))
    return 0


def _needs_eval(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``run``, saying which install it needs when scikit-learn (training) is missing."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except ImportError as exc:
            print(
                f"edgepick: training the propensity model needs {exc.name}: "
                "pip install 'edgepick[eval]'",
                file=sys.stderr,
            )
            return 1

    return guarded


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's subcommands to ``sub``."""
    p = sub.add_parser("propensity", help="the purchase-propensity model on profiles")
    which = p.add_subparsers(dest="propensity", required=True)
    e = which.add_parser("evaluate", help="train and evaluate on synthetic shoppers (JSON)")
    e.add_argument("--users", type=int, default=10_000)
    e.add_argument("--seed", type=int, default=1)
    e.add_argument("--config", default="fixtures/site.toml", help="site config (its signals)")
    e.add_argument("--out", help="also write the model (JSON)")
    e.set_defaults(run=_needs_eval(_evaluate))
    t = which.add_parser("train", help="train on a store: profiles at a cutoff, later purchases")
    t.add_argument("--store", required=True, help="SQLite event store")
    t.add_argument("--config", required=True, help="site config (its signals)")
    t.add_argument("--horizon-days", type=float, default=7.0)
    t.add_argument("--cutoff-ms", type=int, default=0, help="default: now minus the horizon")
    t.add_argument("-o", "--out", required=True, help="the model file to write (JSON)")
    t.set_defaults(run=_needs_eval(_train))
    r = which.add_parser("profiles", help="publish profiles with their propensity bucket")
    r.add_argument("--store", required=True, help="SQLite event store")
    r.add_argument("--config", required=True, help="site config (its signals)")
    r.add_argument("--model", required=True, help="a model from `propensity train` (JSON)")
    r.add_argument("--target", action="append", help="as for `edgepick publish` (repeatable)")
    r.set_defaults(run=_profiles)
    c = sub.add_parser("precompute", help="decisions for the most frequent contexts, to KV")
    c.add_argument("snapshot", help="snapshot file (from edgepick compile)")
    c.add_argument("--visitors", type=int, default=2000, help="demo visitors to count contexts")
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--size", type=int, default=500, help="contexts kept (most frequent first)")
    c.add_argument("--mode", default="always", help="always | budget:<microseconds> | off")
    c.add_argument("--target", action="append", help="as for `edgepick publish` (repeatable)")
    c.set_defaults(run=_precompute)
