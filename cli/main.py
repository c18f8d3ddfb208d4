"""The ``edgepick`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cli import lake_commands, signal_commands, workspace_commands
from cli.origin_commands import register as register_origin
from compile import defaults
from compile.build import build_snapshot
from compile.explain import explain
from compile.personas import persona
from compile.problems import ConfigError, Problem
from compile.site import load_toml
from core import preview
from core.decide import decide
from core.engine import Engine
from core.snapshot import SnapshotError, decode_snapshot
from edge.visitor import PREVIEW_PARAM

SCHEMA = defaults.SCHEMA


def _compile(args: argparse.Namespace) -> int:
    blob = build_snapshot(
        Path(args.config),
        Path(args.model) if args.model else None,
        parent=args.parent,
        author=args.author,
        message=args.message,
        created=int(time.time()),
    )
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(blob)
    snap = decode_snapshot(blob)
    variants = sum(len(s.variants) for s in snap.site.slots)
    print(
        f"{out}: snapshot {snap.header.id}, {len(blob)} bytes, {len(snap.site.slots)} slots, "
        f"{variants} variants, {len(snap.site.audiences)} audiences"
    )
    return 0


def _load_personas(path: Path) -> dict[str, Any]:
    table = load_toml(path)
    return {k: v for k, v in table.items() if isinstance(v, dict)}


def _explain(args: argparse.Namespace) -> int:
    snapshot = decode_snapshot(Path(args.snapshot).read_bytes())
    engine = Engine.from_snapshot(snapshot)
    now = args.now or int(time.time())
    specs: dict[str, Any]
    if args.visitor:
        try:
            specs = {"visitor": json.loads(args.visitor)}
        except json.JSONDecodeError as exc:
            raise ConfigError(
                [Problem("--visitor", f"not valid JSON: {exc}", args.visitor)]
            ) from None
    else:
        personas = _load_personas(Path(args.personas))
        names = [args.persona] if args.persona else list(personas)
        unknown = [n for n in names if n not in personas]
        if unknown:
            print(f"unknown persona {unknown[0]!r}; known: {', '.join(personas)}", file=sys.stderr)
            return 2
        specs = {n: personas[n] for n in names}
    slots = args.slots.split(",") if args.slots else None
    for name, spec in specs.items():
        state, context = persona(spec, now, name)
        decisions = decide(engine, state, context, now, slots)
        if args.json:
            print(
                json.dumps(
                    {
                        "persona": name,
                        "decisions": [
                            {
                                "slot": d.slot,
                                "variant": d.variant,
                                "propensity": d.propensity,
                                "reason": d.reason.value,
                                "policy": d.policy,
                                "decision_id": d.decision_id,
                                "trail": list(d.trail),
                            }
                            for d in decisions
                        ],
                    }
                )
            )
        else:
            print(f"== {name}: {spec.get('description', '')}")
            print(explain(engine, state, context, now, decisions))
            print()
    return 0


def _preview_token(args: argparse.Namespace) -> int:
    key = (args.key or os.environ.get("PREVIEW_KEY", "")).encode()
    if not key:
        print(
            "edgepick: give --key or set PREVIEW_KEY (the worker's preview secret)", file=sys.stderr
        )
        return 2
    spec: dict[str, Any] = {}
    if args.persona:
        personas = _load_personas(Path(args.personas))
        if args.persona not in personas:
            print(
                f"unknown persona {args.persona!r}; known: {', '.join(personas)}", file=sys.stderr
            )
            return 2
        spec = {k: v for k, v in personas[args.persona].items() if k != "description"}
    variants = {}
    for pair in args.variant or []:
        slot, sep, variant = pair.partition("=")
        if not sep or not slot or not variant:
            raise ConfigError([Problem("--variant", "expected SLOT=VARIANT", pair)])
        variants[slot] = variant
    expires = int(time.time()) + args.ttl
    token = preview.encode(preview.Preview(expires, spec, variants), key)
    print(token)
    print(f"open: {args.url.rstrip('/')}/?{PREVIEW_PARAM}={token}", file=sys.stderr)
    return 0


def _schema(_: argparse.Namespace) -> int:
    print(SCHEMA.read_text(), end="")
    return 0


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _demo(args: argparse.Namespace) -> int:
    config = defaults.path("site.toml")
    model = defaults.path("model.json")
    out = Path(args.output)
    print(f"$ edgepick compile {_shown(config)} --model {_shown(model)} -o {out}")
    _compile(
        argparse.Namespace(
            config=str(config),
            model=str(model),
            output=str(out),
            parent="",
            author="demo",
            message="fixture site",
        )
    )
    slots = None if args.explain_only else "hero,headline,promo"
    print(f"\n$ edgepick explain {out}" + (f" --slots {slots}" if slots else "") + "\n")
    _explain(
        argparse.Namespace(
            snapshot=str(out),
            personas=str(defaults.path("personas.toml")),
            persona=None,
            visitor=None,
            slots=slots,
            now=1_790_000_000,
            json=False,
        )
    )
    if args.explain_only:
        return 0
    from cli.demo import run

    print("== the loop: edge (wrangler dev) -> collector -> learn -> publish -> edge\n")
    rows = run(rounds=args.rounds, visitors=args.visitors, seed=args.seed)
    return 0 if rows and rows[-1]["errors"] == 0 else 1


def _import(args: argparse.Namespace) -> int:
    """``edgepick import growthbook FEATURES.json -o site.toml``."""
    from compile.growthbook import import_payload, to_toml

    try:
        payload = json.loads(Path(args.payload).read_text())
        if not isinstance(payload, dict):
            raise ValueError('a GrowthBook payload is a JSON object with "features"')
        config, skipped = import_payload(payload)
    except (ValueError, OSError) as exc:
        print(f"edgepick: {args.payload}: {exc}", file=sys.stderr)
        return 1
    Path(args.output).write_text(to_toml(config))
    print(f"edgepick: imported {len(config['slots'])} features into {args.output}")
    for key, why in skipped.items():
        print(f"edgepick: skipped feature {key!r}: {why}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgepick", description="Edge personalization engine.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compile", help="compile a site config into a snapshot")
    c.add_argument("config")
    c.add_argument("-o", "--output", required=True)
    c.add_argument("--model", help="learned model (JSON) to merge")
    c.add_argument("--parent", default="", help="parent snapshot id")
    c.add_argument("--author", default="")
    c.add_argument("--message", default="")
    c.set_defaults(run=_compile)
    e = sub.add_parser("explain", help="explain the decisions for described visitors")
    e.add_argument("snapshot")
    e.add_argument("--persona", help="one persona from --personas (default: all)")
    e.add_argument("--personas", default=str(defaults.path("personas.toml")))
    e.add_argument("--visitor", help='a persona as JSON, e.g. \'{"visits": 3, "context": {...}}\'')
    e.add_argument("--slots", help="comma-separated slot names (default: all)")
    e.add_argument("--now", type=int, default=0, help="decision time, unix seconds")
    e.add_argument("--json", action="store_true", help="one JSON object per persona")
    e.set_defaults(run=_explain)
    s = sub.add_parser("schema", help="print the config's JSON Schema")
    s.set_defaults(run=_schema)
    t = sub.add_parser("preview-token", help="mint a signed, expiring preview token")
    t.add_argument("--persona", help="a persona from --personas whose features to force")
    t.add_argument("--personas", default=str(defaults.path("personas.toml")))
    t.add_argument("--variant", action="append", help="SLOT=VARIANT to force (repeatable)")
    t.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    t.add_argument("--key", help="preview secret (default: $PREVIEW_KEY)")
    t.add_argument("--url", default="http://127.0.0.1:8787", help="site URL for the printed link")
    t.set_defaults(run=_preview_token)
    i = sub.add_parser("import", help="import another tool's targeting as a site config")
    i.add_argument("source", choices=["growthbook"], help="growthbook: an SDK payload (JSON)")
    i.add_argument("payload", help="the payload file, e.g. features.json")
    i.add_argument("-o", "--output", required=True, help="the site config to write (TOML)")
    i.set_defaults(run=_import)
    d = sub.add_parser("demo", help="explain the fixture site, then run the whole loop locally")
    d.add_argument("-o", "--output", default="out/site.snap")
    d.add_argument("--rounds", type=int, default=5)
    d.add_argument("--visitors", type=int, default=300, help="synthetic visitors per round")
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--explain-only", action="store_true", help="skip the loop (no wrangler)")
    d.set_defaults(run=_demo)
    register_origin(sub)
    for commands in (lake_commands, signal_commands, workspace_commands):
        commands.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"edgepick: {exc}", file=sys.stderr)
        return 1
    except (SnapshotError, tomllib.TOMLDecodeError, OSError) as exc:
        print(f"edgepick: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
