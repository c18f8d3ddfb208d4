"""The `edgepick lake` subcommands (registered by cli.main): the event lake and the stream.

edgepick lake flush --store FILE --lake DIR        hot buffer -> Parquet segments
edgepick lake compact --lake DIR [--store FILE --drop-hot-after DAYS]
edgepick lake aggregate SITE.toml --lake DIR [--engine duckdb|spark] [--store FILE]
edgepick lake status --lake DIR
edgepick lake serve --nats URL [--port 8887]       a collector publishing to JetStream
edgepick lake consume --nats URL --store FILE      JetStream -> the hot buffer
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

NATS_ENV = "EDGEPICK_NATS_URL"


def _guard(name: str, run: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """A subcommand whose errors are one ``edgepick lake NAME: Type: message`` line, exit 1."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except ImportError as exc:
            from cli.origin_commands import _missing_extra

            return _missing_extra(exc)
        except BrokenPipeError:  # `edgepick lake status | head`: the reader left, we are done
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # Python's last flush writes nowhere
            return 0
        except ValueError as exc:  # not a lake, an unreadable segment, a bad argument
            from cli.origin_commands import message

            print(f"edgepick lake {name}: {message(exc)}", file=sys.stderr)
            return 1
        except Exception as exc:  # reported, not hidden: exit status 1
            from cli.origin_commands import describe

            print(f"edgepick lake {name}: {describe(exc)}", file=sys.stderr)
            return 1

    return guarded


def _lake(args: argparse.Namespace, create: bool = False) -> Any:
    """The ``--lake`` directory: an existing lake (``create``: or a new, empty one)."""
    from origin.lake.segments import Lake

    return Lake(args.lake, create=create)


def _store_exists(path: str) -> None:
    if not Path(path).is_file():
        raise ValueError(f"no event store at {path}")


def _flush(args: argparse.Namespace) -> int:
    from origin.lake.flush import flush

    _store_exists(args.store)
    done = flush(args.store, _lake(args, create=True))
    print(
        json.dumps(
            {"events": done.events, "segments": done.segments, "watermarks": done.watermarks}
        )
    )
    return 0


def _compact(args: argparse.Namespace) -> int:
    from origin.lake.retention import compact, drop_hot

    now = int(time.time() * 1000)
    if args.store and args.drop_hot_after is not None:
        _store_exists(args.store)
    lake = _lake(args)
    done = compact(lake, now)
    out: dict[str, Any] = {
        "hours": done.hours,
        "segments_before": done.segments_before,
        "segments_after": done.segments_after,
        "duplicates": done.duplicates,
        "orphans": done.orphans,
    }
    if args.store and args.drop_hot_after is not None:
        out["hot_rows_dropped"] = drop_hot(args.store, lake, now, args.drop_hot_after)
    print(json.dumps(out))
    return 0


def _aggregate(args: argparse.Namespace) -> int:
    from compile.site import compile_site, load_toml
    from origin.lake.engines import engine
    from origin.lake.rounds import LakeRounds
    from origin.learn import widths
    from origin.training import Reward, Windows

    site = compile_site(load_toml(Path(args.config)), None, args.config)
    if args.store:
        _store_exists(args.store)
    rounds = LakeRounds(_lake(args, create=bool(args.store)), engine(args.engine))
    windows = Windows(args.click_window * 60_000, args.conversion_window * 3_600_000)
    started = time.perf_counter()
    found = rounds.round(widths(site), windows, Reward.parse(args.reward), args.store)
    arms = [
        {"slot": slot, "variant": variant, "n": s.n, "successes": s.successes, "reward": s.reward}
        for (slot, variant), s in sorted(found.learnable.arms.items())
    ]
    summary = {
        "engine": rounds.engine.name,
        "seconds": round(time.perf_counter() - started, 3),
        "rows": found.rows,
        "policy_draws": found.learnable_rows,
        "recomputed": found.recomputed,
        "files_read": found.files_read,
        "arms": arms,
    }
    print(json.dumps(summary, indent=1))
    return 0


def _status(args: argparse.Namespace) -> int:
    """The lake's summary; every segment's Parquet footer is read, and a segment missing or
    unreadable is listed under ``corrupt`` (exit status 1)."""
    summary = _lake(args).summary(check=True)
    print(json.dumps(summary, indent=1, sort_keys=True))
    for bad in summary["corrupt"]:
        print(f"edgepick lake status: segment {bad['path']}: {bad['problem']}", file=sys.stderr)
    return 1 if summary["corrupt"] else 0


def _nats_url(args: argparse.Namespace) -> str:
    import os

    url = args.nats or os.environ.get(NATS_ENV, "")
    if not url:
        raise SystemExit(f"edgepick lake: no NATS server: pass --nats URL or set {NATS_ENV}")
    return str(url)


def _serve(args: argparse.Namespace) -> int:
    from cli.origin_commands import _previous_secrets, _secret
    from origin.collector import Service, create_app
    from origin.lake.stream import JetStreamSink
    from origin.server import serve
    from origin.store import EventStore

    url = _nats_url(args)
    print(f"edgepick: waiting for NATS at {url} before serving", flush=True)
    sink = JetStreamSink(url)
    service = Service(cast(EventStore, sink), _secret(args), previous=_previous_secrets(args))
    print(f"edgepick: collector on http://{args.host}:{args.port} (JetStream)", flush=True)
    serve(create_app(service), args.host, args.port, args.log_level)
    return 0


def _consume(args: argparse.Namespace) -> int:
    from origin.lake.stream import consume
    from origin.store import SqliteStore

    store = SqliteStore(args.store)
    print(f"edgepick: consuming JetStream into {args.store}", flush=True)
    try:
        done = asyncio.run(
            consume(
                _nats_url(args), store, batch=args.batch, idle=args.idle, ack_wait=args.ack_wait
            )
        )
    except KeyboardInterrupt:
        return 130
    print(json.dumps(done.__dict__))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's subcommands to ``sub``."""
    lake = sub.add_parser("lake", help="the event lake (Parquet) and the JetStream transport")
    cmds = lake.add_subparsers(dest="lake_command", required=True)

    f = cmds.add_parser("flush", help="move the hot buffer's new rows into the lake")
    f.add_argument("--store", required=True, help="the SQLite event store (hot buffer)")
    f.add_argument("--lake", required=True, help="the lake directory")
    f.set_defaults(run=_guard("flush", _flush))

    c = cmds.add_parser("compact", help="compact closed days; optionally trim the hot buffer")
    c.add_argument("--lake", required=True)
    c.add_argument("--store", help="the hot buffer to trim (with --drop-hot-after)")
    c.add_argument(
        "--drop-hot-after", type=float, help="days after which flushed rows leave the hot buffer"
    )
    c.set_defaults(run=_guard("compact", _compact))

    a = cmds.add_parser("aggregate", help="bring the lake's aggregates up to date and show them")
    a.add_argument("config", help="the site config (slots and their feature widths)")
    a.add_argument("--lake", required=True)
    a.add_argument("--store", help="flush this hot buffer first")
    a.add_argument(
        "--engine",
        default=None,
        choices=("duckdb", "spark"),
        help="default: $EDGEPICK_LAKE_ENGINE, else duckdb",
    )
    a.add_argument("--reward", default="click=1")
    a.add_argument("--click-window", type=int, default=30, help="minutes")
    a.add_argument("--conversion-window", type=int, default=24, help="hours")
    a.set_defaults(run=_guard("aggregate", _aggregate))

    st = cmds.add_parser("status", help="segments, rows, hours and watermarks of a lake")
    st.add_argument("--lake", required=True)
    st.set_defaults(run=_guard("status", _status))

    s = cmds.add_parser("serve", help="a collector that publishes batches to JetStream")
    s.add_argument("--nats", help=f"NATS server URL (default: ${NATS_ENV})")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8887)
    s.add_argument("--secret", help="event signing secret (default: $EDGEPICK_SECRET)")
    s.add_argument("--previous-secret", action="append", default=None)
    s.add_argument("--log-level", default="warning")
    s.set_defaults(run=_guard("serve", _serve))

    k = cmds.add_parser("consume", help="write JetStream's events into the hot buffer")
    k.add_argument("--nats", help=f"NATS server URL (default: ${NATS_ENV})")
    k.add_argument("--store", required=True)
    k.add_argument("--batch", type=int, default=64, help="messages per fetch")
    k.add_argument("--ack-wait", type=float, default=30.0, help="seconds before a redelivery")
    k.add_argument(
        "--idle", type=float, default=1.0, help="seconds a fetch waits for messages (default 1)"
    )
    k.set_defaults(run=_guard("consume", _consume))
