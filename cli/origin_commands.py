"""The origin's ``edgepick`` subcommands.

serve, publish, history, diff, rollback, unretire, sync, inspect (see docs/operations.md);
simulate, evaluate, report (see docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from compile import defaults
from core.model import Signals
from core.snapshot import decode_snapshot
from origin.settings import LAKE_ENGINE_ENV, LAKE_ENV, PREVIOUS_SECRETS_ENV, SECRET_ENV

DEFAULT_REGISTRY = "out/registry"
DEFAULT_PORT = 8887
DEFAULT_STORE = "out/events.db"


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Origin errors as one ``edgepick: ...`` line and exit status 1, not a traceback.

    The origin's modules are imported when a command runs, not when the parser is built, so the
    base install (msgpack only) still runs ``compile``, ``explain`` and ``preview-token``; an
    origin command there says which extra to install.
    """

    def guarded(args: argparse.Namespace) -> int:
        try:
            from origin.publish import PublishError
            from origin.registry import RegistryError
            from origin.targets import TargetError
        except ImportError as exc:  # pragma: no cover - exercised by tests/test_packaging.py
            return _missing_extra(exc)
        try:
            return run(args)
        except ImportError as exc:
            return _missing_extra(exc)
        except (PublishError, RegistryError, TargetError) as exc:
            print(f"edgepick: {message(exc)}", file=sys.stderr)
            return 1
        except ValueError as exc:  # e.g. a bad --reward
            print(f"edgepick: {message(exc)}", file=sys.stderr)
            return 1
        except OSError as exc:  # a file, a socket, a timeout: the type says which
            print(f"edgepick: {describe(exc)}", file=sys.stderr)
            return 1

    return guarded


def message(exc: BaseException) -> str:
    """The exception's message, or its type's name when it has none (``TimeoutError()``)."""
    text = str(exc).strip()
    return text or type(exc).__name__


def describe(exc: BaseException) -> str:
    """``Type: message`` (or the type alone when there is no message)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _missing_extra(exc: ImportError) -> int:
    print(
        f"edgepick: this command needs the origin's dependencies ({exc.name} is missing): "
        "pip install 'edgepick[origin]'",
        file=sys.stderr,
    )
    return 1


def _secret(args: argparse.Namespace) -> bytes:
    secret = args.secret or os.environ.get(SECRET_ENV, "")
    if not secret:
        raise SystemExit(f"edgepick: no event secret: pass --secret or set {SECRET_ENV}")
    return secret.encode()


def _previous_secrets(args: argparse.Namespace) -> tuple[bytes, ...]:
    # taken as given, like the secret itself (and the edge's EVENTS_SECRET): no stripping
    given = args.previous_secret or os.environ.get(PREVIOUS_SECRETS_ENV, "").split(",")
    return tuple(s.encode() for s in given if s)


def _targets(specs: list[str] | None) -> list:  # type: ignore[type-arg]
    from origin.targets import parse_target

    return [parse_target(s) for s in specs or []]


def serve_service(args: argparse.Namespace) -> Any:
    """The ``origin.collector.Service`` ``edgepick serve`` runs: events and API decisions into
    the SQLite store, or with ``--nats URL`` published to JetStream (``edgepick lake consume``
    moves them into the store, which ``/v1/decide`` reads profiles from)."""
    from typing import cast

    from origin.channels import Decider
    from origin.collector import Service
    from origin.registry import Registry
    from origin.store import EventStore, SqliteStore

    store: EventStore = SqliteStore(args.store)
    if args.nats:
        from origin.lake.stream import JetStreamSink, StreamedStore

        print(f"edgepick: waiting for NATS at {args.nats} before serving", flush=True)
        store = cast(EventStore, StreamedStore(store, JetStreamSink(args.nats)))
    registry = Registry(args.registry)
    previous = _previous_secrets(args)
    return Service(store, _secret(args), Decider(registry, store), previous=previous)


def _serve(args: argparse.Namespace) -> int:
    from origin.collector import create_app
    from origin.server import serve

    service = serve_service(args)
    where = f"JetStream {args.nats}, reads {args.store}" if args.nats else f"store {args.store}"
    print(f"edgepick: collector on http://{args.host}:{args.port} ({where})", flush=True)
    serve(create_app(service), args.host, args.port, args.log_level)  # slowloris-guarded
    return 0


def _publish(args: argparse.Namespace) -> int:
    from origin.publish import publish
    from origin.registry import Registry

    blob = Path(args.snapshot).read_bytes()
    targets = _targets(args.target)
    done = publish(blob, targets, Registry(args.registry), author=args.author, note=args.message)
    print(
        f"published {done.header.id} (previous {done.previous or '-'}) to "
        f"{', '.join(done.targets) or 'the registry only'}"
    )
    return 0


def _history(args: argparse.Namespace) -> int:
    import datetime as dt

    from origin.registry import Registry

    registry = Registry(args.registry)
    if args.audit:
        for entry in registry.audit_log():
            print(json.dumps(entry, sort_keys=True))
        return 0
    current = registry.current()
    headers = registry.headers()
    for line in registry.overrides.holds():
        print(f"hold: {line}")
    if not headers:
        print(f"no snapshots in {registry.root}")
    published: dict[str, dict[str, Any]] = {}  # the last publish of each id: who, when, why
    for entry in registry.audit_log():
        if entry.get("action") in ("publish", "rollback", "pin") and entry.get("id"):
            published[str(entry["id"])] = entry
    for h in headers[: args.limit]:
        when = dt.datetime.fromtimestamp(h.created, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        mark = "*" if h.id == current else " "
        audit = published.get(h.id, {})
        author = audit.get("author") or h.author or "-"
        message = audit.get("message") or audit.get("reason") or h.message
        print(f"{mark} {h.id}  {when}  parent {h.parent or '-':20}  {author}: {message}")
    return 0


def _diff(args: argparse.Namespace) -> int:
    from origin.diff import diff_sites, for_visitors, render, words
    from origin.registry import Registry

    registry = Registry(args.registry)

    def load(ref: str) -> tuple[str, bytes]:
        path = Path(ref)
        if path.is_file():
            return ref, path.read_bytes()
        sid = registry.resolve(ref)
        return sid, registry.get(sid)

    (na, a), (nb, b) = load(args.a), load(args.b)
    site_a, site_b = decode_snapshot(a).site, decode_snapshot(b).site
    changes = for_visitors(site_a, site_b)
    if args.json:
        print(json.dumps({"from": na, "to": nb, **changes}, indent=2, sort_keys=True))
        return 0
    said = words(changes)
    print(f"{na} -> {nb}: what changes for visitors")
    print("\n".join(f"  {line}" for line in said) if said else "  nothing visitors would notice")
    if args.detail:
        print(render(diff_sites(site_a, site_b, args.tol), na, nb))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from origin.publish import rollback
    from origin.registry import Registry

    registry = Registry(args.registry)
    done = rollback(registry, args.id, _targets(args.target), args.author)
    reason = args.reason or f"rollback from {done.previous or '-'}"
    registry.overrides.set_pin(done.header.id, args.author, reason)
    registry.audit("pin", id=done.header.id, reason=reason, author=args.author)
    print(f"rolled back to {done.header.id} (was {done.previous or '-'}); pinned: sync publishes")
    print("nothing until `edgepick resume`")
    return 0


def _pin(args: argparse.Namespace) -> int:
    from origin.publish import publish
    from origin.registry import Registry

    registry = Registry(args.registry)
    sid = registry.resolve(args.id)
    if registry.current() != sid:
        publish(registry.get(sid), _targets(args.target), registry, author=args.author)
    registry.overrides.set_pin(sid, args.author, args.reason)
    registry.audit("pin", id=sid, reason=args.reason, author=args.author)
    print(f"pinned to {sid}: sync publishes nothing until `edgepick resume`")
    return 0


def _pause(args: argparse.Namespace) -> int:
    from origin.registry import Registry

    registry = Registry(args.registry)
    registry.overrides.pause(args.slot, args.author, args.reason)
    registry.audit("pause", slot=args.slot, reason=args.reason, author=args.author)
    print(f"paused {args.slot}: its learned numbers stay as published until `edgepick resume`")
    return 0


def _resume(args: argparse.Namespace) -> int:
    from origin.registry import Registry

    registry = Registry(args.registry)
    slot, variant = args.slot, None
    if slot and "/" in slot:
        slot, variant = slot.split("/", 1)
    lifted = registry.overrides.resume(pin=args.pin, slot=slot, variant=variant)
    if not lifted:
        print("edgepick: no such hold in force", file=sys.stderr)
        return 1
    registry.audit("resume", lifted=lifted, author=args.author)
    for line in lifted:
        print(f"lifted the {line}")
    return 0


def _unretire(args: argparse.Namespace) -> int:
    from origin.registry import Registry

    registry = Registry(args.registry)
    if not registry.overrides.unretire(args.slot, args.variant):
        print(f"{args.slot}/{args.variant} is not retired by the origin", file=sys.stderr)
        return 1
    registry.overrides.keep(args.slot, args.variant, args.author, args.reason)
    registry.audit("unretire", slot=args.slot, variant=args.variant, author=args.author)
    print(f"unretired {args.slot}/{args.variant}: the next sync compiles it back in, and the")
    print("learner leaves it until `edgepick resume`")
    return 0


def _sync(args: argparse.Namespace) -> int:
    from origin.learn import LearnConfig
    from origin.monitor import MonitorConfig
    from origin.registry import Registry
    from origin.retire import RetireConfig
    from origin.store import SqliteStore
    from origin.sync import SyncJob, run_loop
    from origin.training import Reward, Windows

    if args.config and args.from_registry:
        print("edgepick sync: give a config file or --from-registry, not both", file=sys.stderr)
        return 2
    job = SyncJob(
        config=Path(args.config) if args.config else None,
        store=SqliteStore(args.store),
        registry=Registry(args.registry),
        targets=_targets(args.target),
        model=Path(args.model) if args.model else None,
        windows=Windows(args.click_window * 60_000, args.conversion_window * 3_600_000),
        reward=Reward.parse(args.reward),
        learn=LearnConfig(seed=args.seed),
        retire=RetireConfig(min_samples=args.min_samples),
        monitor=MonitorConfig(budget_us=args.budget_us),
        webhook=args.webhook,
        author=args.author,
        propensity=Path(args.propensity) if args.propensity else None,
    )
    if job.config is None:  # fail now, not after the loop's retries, when there is none
        from origin.sync import live_config

        live_config(job.registry)
    if args.lake:
        from origin.lake.engines import engine
        from origin.lake.rounds import LakeRounds
        from origin.lake.segments import Lake

        # --lake-engine, else EDGEPICK_LAKE_ENGINE, else DuckDB
        job.lake = LakeRounds(Lake(args.lake), engine(args.lake_engine))
    results = run_loop(job, rounds=args.rounds, interval=args.interval, once=args.once)
    return 1 if args.once and results and results[-1].error else 0


def _simulate(args: argparse.Namespace) -> int:
    from origin import simulate

    if args.store or args.registry:
        from origin.registry import Registry
        from origin.store import SqliteStore

        if not (args.store and args.registry):
            raise SystemExit("edgepick: the site loop needs both --store and --registry")
        loop = simulate.LoopConfig(
            hours=args.hours,
            visitors=args.visitors,
            seed=args.seed,
            config=Path(args.config),
            model=Path(args.model) if args.model else None,
            outage_hour=None if args.outage_hour < 0 else args.outage_hour,
        )
        store = SqliteStore(args.store)
        results = simulate.populate(store, Registry(args.registry), loop)
        alerts = sum(len(r.alerts) for r in results)
        print(
            f"simulated {args.hours} hours: {store.count('exposure')} exposures, "
            f"{store.count('click')} clicks, {len(results)} sync rounds, {alerts} alerts; "
            f"store {args.store}, registry {args.registry}"
        )
        return 0
    policies = tuple(p.strip() for p in args.policies.split(",") if p.strip())
    sim = simulate.SimConfig(
        rounds=args.rounds,
        batch=args.batch,
        seed=args.seed,
        slot=args.slot,
        policies=policies,
        config=Path(args.config),
        truth=args.truth,
        exploration="" if args.exploration == "authored" else args.exploration,
        empirical_bayes=args.arm_prior == "evidence",
    )
    if args.seeds > 1:  # mean and spread over seeds seed .. seed + seeds - 1
        result = simulate.run_seeds(sim, args.seeds)
        print(simulate.describe_seeds(result))
        if args.output:
            simulate.save(result, Path(args.output))
            print(f"wrote {args.output}")
        return 0
    result = simulate.run(sim)
    print(simulate.describe(result))
    if args.output:
        simulate.save(result, Path(args.output))
        print(f"wrote {args.output}")
    if args.plot:
        simulate.plot_regret(result, Path(args.plot))
        print(f"wrote {args.plot}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    out: dict[str, object] = {}
    if args.digits:
        from origin import digits

        result = digits.validate(repeats=args.repeats, resamples=args.resamples, seed=args.seed)
        print(digits.describe(result))
        out["digits"] = result
    if args.obd:
        from origin import obd

        try:
            found = obd.run(Path(args.obd), resamples=args.resamples, seed=args.seed)
        except obd.ObdMissing as exc:
            print(f"edgepick: {exc}", file=sys.stderr)
            return 1
        print(obd.describe(found))
        out["obd"] = found
    if not (args.digits or args.obd) or args.store_given:
        from origin.evaluate import evaluate_store, table
        from origin.registry import Registry
        from origin.store import SqliteStore
        from origin.training import Reward, Windows

        if not Path(args.store).exists():
            print(f"edgepick: no event store at {args.store}", file=sys.stderr)
            return 1
        targets = [t.strip() for t in args.target.split(",") if t.strip()]
        results = evaluate_store(
            SqliteStore(args.store),
            Registry(args.registry),
            targets=targets,
            slots=args.slot or None,
            since_ms=args.since,
            windows=Windows(args.click_window * 60_000, args.conversion_window * 3_600_000),
            reward=Reward.parse(args.reward),
            resamples=args.resamples,
            seed=args.seed,
        )
        print(table(results))
        out["store"] = [r.as_dict() for r in results]
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.json}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from origin.registry import Registry
    from origin.report import write
    from origin.store import SqliteStore

    if not Path(args.store).exists():
        print(f"edgepick: no event store at {args.store}", file=sys.stderr)
        return 1
    registry = Registry(args.registry)
    facts = None
    lake = args.lake or os.environ.get(LAKE_ENV)
    if lake:
        from origin.lake.report import lake_facts
        from origin.lake.segments import Lake

        facts = lake_facts(Lake(lake), registry, store_path=args.store)
    report = write(
        SqliteStore(args.store),
        registry,
        Path(args.output),
        budget_us=args.budget_us,
        resamples=args.resamples,
        seed=args.seed,
        facts=facts,
        ope_days=args.ope_days if lake else None,
    )
    source = f" (from the lake {lake})" if lake else ""
    print(f"wrote {args.output}{source}: {len(report.headings)} sections, {report.figures} plots")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from origin import inspect
    from origin.store import SqliteStore

    if not Path(args.store).exists():
        print(f"edgepick: no event store at {args.store}", file=sys.stderr)
        return 1
    store = SqliteStore(args.store)
    try:
        found: dict[str, Any] | None
        render: Callable[[Mapping[str, Any]], str]
        if args.what == "decision":
            found, render = inspect.decision(store, args.id), inspect.render_decision
        elif args.what == "visitor":
            found, render = inspect.visitor(store, args.id), inspect.render_visitor
        else:
            found, render = inspect.user(store, _signals(args), args.id), inspect.render_user
    finally:
        store.close()
    if found is None:
        print(f"edgepick: no {args.what} {args.id!r} in {args.store}", file=sys.stderr)
        return 1
    print(json.dumps(found, indent=2, sort_keys=True) if args.json else render(found))
    return 0


def _signals(args: argparse.Namespace) -> Signals:
    """The site's signals (categories, funnel, sessions) that profiles are folded with: from
    ``--config`` when given, else the registry's current snapshot."""
    if args.config:
        from compile.site import compile_site, load_toml

        return compile_site(load_toml(Path(args.config))).signals
    from origin.registry import Registry

    blob = Registry(args.registry).current_blob()
    if blob is None:
        raise ValueError(
            f"no current snapshot in {args.registry} to read the site's signals from: "
            "pass --config SITE.toml or --registry DIR"
        )
    return decode_snapshot(blob).site.signals


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the origin's subcommands to the ``edgepick`` parser."""

    def registry_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--registry", default=DEFAULT_REGISTRY, help="snapshot registry directory")

    def target_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--target",
            action="append",
            help="dir:PATH | wrangler:PERSIST_DIR[,config=F][,binding=B] | "
            "cloudflare:ACCOUNT/NAMESPACE[,base_url=URL] (repeatable)",
        )

    s = sub.add_parser("serve", help="run the origin service (collector + decide API)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    s.add_argument("--store", default=DEFAULT_STORE, help="SQLite event store file")
    s.add_argument("--secret", help=f"event signing secret (default: ${SECRET_ENV})")
    s.add_argument(
        "--previous-secret",
        action="append",
        help="a secret still accepted during a rotation (repeatable; default: "
        f"${PREVIOUS_SECRETS_ENV}, comma-separated)",
    )
    s.add_argument("--log-level", default="warning")
    s.add_argument(
        "--nats",
        help="publish collected events and API decisions to this NATS JetStream server instead "
        "of writing the store (run `edgepick lake consume --store` beside it; docs/scale.md)",
    )
    registry_arg(s)
    s.set_defaults(run=_guarded(_serve))

    p = sub.add_parser("publish", help="publish a snapshot: blob first, then the pointer")
    p.add_argument("snapshot", help="snapshot file (from edgepick compile)")
    p.add_argument("--author", default=os.environ.get("USER", ""))
    p.add_argument("--message", default="")
    registry_arg(p)
    target_arg(p)
    p.set_defaults(run=_guarded(_publish))

    h = sub.add_parser("history", help="snapshots in the registry, newest first (* = current)")
    h.add_argument("--limit", type=int, default=50)
    h.add_argument("--audit", action="store_true", help="print the audit log instead")
    registry_arg(h)
    h.set_defaults(run=_guarded(_history))

    d = sub.add_parser("diff", help="what changed between two snapshots (ids or files)")
    d.add_argument("a")
    d.add_argument("b")
    d.add_argument("--tol", type=float, default=1e-6, help="--detail: ignore smaller changes")
    d.add_argument("--json", action="store_true", help="the changes as JSON, for machines")
    d.add_argument("--detail", action="store_true", help="also every number that changed")
    registry_arg(d)
    d.set_defaults(run=_guarded(_diff))

    r = sub.add_parser("rollback", help="point the targets back at an earlier snapshot")
    r.add_argument("id", help="snapshot id (or a unique prefix)")
    r.add_argument("--author", default=os.environ.get("USER", ""))
    r.add_argument("--reason", default="", help="why (kept with the pin, in the audit log)")
    registry_arg(r)
    target_arg(r)
    r.set_defaults(run=_guarded(_rollback))

    pn = sub.add_parser("pin", help="publish a snapshot and hold it: sync publishes nothing")
    pn.add_argument("id", help="snapshot id (or a unique prefix)")
    pn.add_argument("--author", default=os.environ.get("USER", ""))
    pn.add_argument("--reason", default="", help="why (kept with the pin, in the audit log)")
    registry_arg(pn)
    target_arg(pn)
    pn.set_defaults(run=_guarded(_pin))

    pa = sub.add_parser("pause", help="freeze a slot's learned numbers until resumed")
    pa.add_argument("slot")
    pa.add_argument("--author", default=os.environ.get("USER", ""))
    pa.add_argument("--reason", default="")
    registry_arg(pa)
    pa.set_defaults(run=_guarded(_pause))

    re_ = sub.add_parser("resume", help="lift operator holds (all, --pin, or --slot S[/VARIANT])")
    re_.add_argument("--pin", action="store_true", help="only the pin")
    re_.add_argument("--slot", help="only this slot's pause, or SLOT/VARIANT's keep")
    re_.add_argument("--author", default=os.environ.get("USER", ""))
    registry_arg(re_)
    re_.set_defaults(run=_guarded(_resume))

    u = sub.add_parser("unretire", help="undo the origin's retirement of a variant")
    u.add_argument("slot")
    u.add_argument("variant")
    u.add_argument("--author", default=os.environ.get("USER", ""))
    u.add_argument("--reason", default="")
    registry_arg(u)
    u.set_defaults(run=_guarded(_unretire))

    y = sub.add_parser("sync", help="the scheduled job: collect -> learn -> compile -> publish")
    y.add_argument(
        "config",
        nargs="?",
        help="site config (TOML); none: the registry's live config version (--from-registry)",
    )
    y.add_argument(
        "--from-registry",
        action="store_true",
        help="compile the registry's live config version (REGISTRY/configs/HEAD, what the "
        "workspace published), read every round; the default without a config file",
    )
    y.add_argument("--model", help="base model JSON the learned numbers are laid over")
    y.add_argument("--store", default=DEFAULT_STORE)
    y.add_argument("--once", action="store_true", help="one round (for cron)")
    y.add_argument("--rounds", type=int, default=0, help="stop after N rounds (0: run on)")
    y.add_argument("--interval", type=float, default=300.0, help="seconds between rounds")
    y.add_argument("--click-window", type=int, default=30, help="minutes")
    y.add_argument("--conversion-window", type=int, default=24, help="hours")
    y.add_argument("--reward", default="click=1", help="e.g. click=1,conversion=5,value=0.01")
    y.add_argument("--min-samples", type=int, default=200, help="before a variant can retire")
    y.add_argument("--budget-us", type=int, default=5000, help="edge decision latency budget")
    y.add_argument("--webhook", help="POST alerts here as JSON")
    y.add_argument("--seed", type=int, default=0)
    y.add_argument("--author", default="edgepick-sync")
    y.add_argument("--lake", help="learn from this event lake's kept aggregates (docs/scale.md)")
    y.add_argument(
        "--lake-engine",
        choices=("duckdb", "spark"),
        default=None,
        help=f"the lake's engine (default: ${LAKE_ENGINE_ENV}, else duckdb)",
    )
    y.add_argument(
        "--propensity",
        help="purchase-propensity model for the profiles' bucket flag (default: "
        "REGISTRY/propensity.json when it exists; docs/signals.md)",
    )
    registry_arg(y)
    target_arg(y)
    y.set_defaults(run=_guarded(_sync))

    m = sub.add_parser(
        "simulate",
        help="synthetic visitors through the real engine: regret curves, or a store for reports",
    )
    m.add_argument("--config", default=str(defaults.path("site.toml")), help="site config (TOML)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--slot", default="hero", help="regret experiment: the slot to run")
    m.add_argument("--policies", default="fixed,thompson,linear")
    m.add_argument("--rounds", type=int, default=40, help="regret experiment: learning rounds")
    m.add_argument("--batch", type=int, default=250, help="regret experiment: visitors per round")
    m.add_argument(
        "--seeds", type=int, default=1, help="regret experiment: seeds (mean and spread when > 1)"
    )
    m.add_argument(
        "--truth",
        default="contextual",
        choices=("contextual", "context-free"),
        help="regret experiment: who clicks what (context-free: one best variant for all)",
    )
    m.add_argument(
        "--exploration",
        default="squarecb",
        choices=("squarecb", "softmax", "igw", "authored"),
        help="regret experiment: the linear policy's exploration (authored: as the config says)",
    )
    m.add_argument(
        "--arm-prior",
        default="evidence",
        choices=("evidence", "fixed"),
        help="regret experiment: the learner's shrinkage of arms toward the population model "
        "(evidence: empirical Bayes; fixed: the ridge alone, as before)",
    )
    m.add_argument("-o", "--output", help="write the regret result as JSON")
    m.add_argument("--plot", help="write the regret curves as PNG")
    m.add_argument("--store", help="site loop: fill this SQLite event store")
    m.add_argument(
        "--model", default=str(defaults.path("model.json")), help="site loop: base model JSON"
    )
    m.add_argument("--hours", type=int, default=36, help="site loop: simulated hours")
    m.add_argument("--visitors", type=int, default=120, help="site loop: visitors per hour")
    m.add_argument("--outage-hour", type=int, default=30, help="site loop: clicks lost (-1: none)")
    m.add_argument("--registry", help="site loop: snapshot registry to publish into")
    m.set_defaults(run=_guarded(_simulate))

    e = sub.add_parser("evaluate", help="off-policy evaluation: the event store, digits, OBD")
    e.add_argument("--store", default=None, help=f"SQLite event store (default {DEFAULT_STORE})")
    e.add_argument(
        "--target",
        default="logging,uniform,current,greedy",
        help="comma-separated: logging, uniform, current, greedy, snapshot:ID",
    )
    e.add_argument("--slot", action="append", help="only these slots (repeatable)")
    e.add_argument("--since", type=int, default=0, help="only exposures at or after (ms)")
    e.add_argument("--click-window", type=int, default=30, help="minutes")
    e.add_argument("--conversion-window", type=int, default=24, help="hours")
    e.add_argument("--reward", default="click=1")
    e.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument(
        "--digits",
        action="store_true",
        help="validate the estimators on scikit-learn's digits (exact ground truth)",
    )
    e.add_argument("--repeats", type=int, default=100, help="digits: logged data sets")
    e.add_argument(
        "--obd",
        metavar="DIR",
        help="Open Bandit Dataset: directory with obp-0.5.7.tar.gz (e.g. build/obd)",
    )
    e.add_argument("--json", help="write every result as JSON")
    registry_arg(e)
    e.set_defaults(run=_guarded(_evaluate_args))

    i = sub.add_parser("inspect", help="what the origin recorded: a decision, visitor or user")
    what = i.add_subparsers(dest="what", required=True, metavar="{decision,visitor,user}")
    for name, help_text, id_name in (
        ("decision", "one decision: its exposure and the outcomes credited to it", "ID"),
        ("visitor", "one visitor: exposures, outcomes, the user linked", "VISITOR_ID"),
        ("user", "one user's stitched profile (as sync publishes it)", "USER_ID"),
    ):
        w = what.add_parser(name, help=help_text)
        w.add_argument("id", metavar=id_name)
        w.add_argument("--store", default=DEFAULT_STORE, help="SQLite event store file")
        w.add_argument("--json", action="store_true", help="print JSON (stable keys)")
        if name == "user":
            w.add_argument("--config", help="site config whose signals fold the profile")
            registry_arg(w)
        w.set_defaults(run=_guarded(_inspect))

    t = sub.add_parser("report", help="a static HTML report with plots")
    t.add_argument("--store", default=DEFAULT_STORE)
    t.add_argument("-o", "--output", default="out/report.html")
    t.add_argument("--budget-us", type=int, default=5000, help="edge decision latency budget")
    t.add_argument("--resamples", type=int, default=500, help="bootstrap resamples for OPE")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--lake",
        help="read the event lake's aggregates (default: $EDGEPICK_LAKE; the store is flushed "
        "into it first; docs/scale.md)",
    )
    t.add_argument(
        "--ope-days",
        type=float,
        default=7.0,
        help="with a lake: off-policy evaluation over the hot buffer's last N days",
    )
    registry_arg(t)
    t.set_defaults(run=_guarded(_report))


def _evaluate_args(args: argparse.Namespace) -> int:
    """``--store`` defaults to the origin's store unless only --digits/--obd were asked for."""
    args.store_given = args.store is not None
    if args.store is None:
        args.store = DEFAULT_STORE
    return _evaluate(args)
