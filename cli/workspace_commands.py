"""The `edgepick` subcommands of the workspace work (registered by cli.main).

``edgepick workspace`` serves the marketers' web app; ``edgepick workspace user add`` makes an
account; ``edgepick pull`` / ``edgepick push`` move the site config between a developer's
file (in git) and the registry's config versions (docs/workspace.md).
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import secrets
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from origin.workspace.service import Workspace

DEFAULT_REGISTRY = "out/registry"
DEFAULT_PORT = 8800
SECRET_ENV = "EDGEPICK_WORKSPACE_SECRET"
# the first line of a pulled file: the live config's version, or the version a draft is based on
PULLED = re.compile(
    r"^# edgepick (?:config version|draft d-[0-9a-f]{8} \(\w+\), based on config version) "
    r"([0-9a-f]{20})",
    re.MULTILINE,
)
HINT = "Edit, commit, then `edgepick push` it: it becomes a draft for review."


def _home(args: argparse.Namespace) -> Path:
    return Path(args.home) if args.home else Path(args.registry) / "workspace"


def _workspace(args: argparse.Namespace, targets: list[str] | None = None) -> Workspace:
    from origin.registry import Registry
    from origin.targets import parse_target
    from origin.workspace.service import Workspace

    return Workspace(
        Registry(args.registry),
        _home(args),
        [parse_target(t) for t in targets or []],
        Path(args.model) if getattr(args, "model", None) else None,
    )


def _secret(home: Path) -> str:
    """``$EDGEPICK_WORKSPACE_SECRET``, else one kept in HOME/secret (made once, mode 0600)."""
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    path = home / "secret"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from compile import defaults
    from compile.site import load_toml
    from origin.workspace.app import HTMX, create_app

    ws = _workspace(args, args.target)
    seeded = args.config and ws.seed(
        load_toml(Path(args.config)),
        os.environ.get("USER") or "workspace",
        args.config,
        Path(args.config).read_text(encoding="utf-8"),
    )
    if seeded:
        print(f"edgepick workspace: seeded the first config version from {args.config}")
    if not ws.accounts.users():
        print(
            "edgepick workspace: no accounts yet: "
            "`edgepick workspace user add NAME --role approver`",
            file=sys.stderr,
        )
    key = (args.preview_key or os.environ.get("PREVIEW_KEY", "")).encode()
    if not key:
        print(
            "edgepick workspace: no PREVIEW_KEY: the worker will refuse the previews' tokens",
            file=sys.stderr,
        )
    app = create_app(
        ws,
        secret=_secret(ws.home),
        edge_url=args.edge_url,
        preview_key=key,
        personas=Path(args.personas) if args.personas else defaults.path("personas.toml"),
        store=Path(args.store) if args.store else None,
        htmx=Path(args.htmx) if args.htmx else HTMX,
        https_only=args.secure_cookie,
    )
    if not ws.targets:
        print(
            "edgepick workspace: no --target: publishing moves the registry only, not the edge",
            file=sys.stderr,
        )
    print(f"edgepick workspace: http://{args.host}:{args.port}/", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _user_add(args: argparse.Namespace) -> int:
    from origin.workspace.accounts import AccountError, Accounts

    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("edgepick: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        user = Accounts(_home(args) / "users.json").add(
            args.name, args.role, password, replace=args.replace
        )
    except AccountError as exc:
        print(f"edgepick: {exc}", file=sys.stderr)
        return 1
    print(f"edgepick workspace: user {user.name} ({user.role})")
    return 0


def _user_remove(args: argparse.Namespace) -> int:
    """Delete an account: its sessions end at their next request."""
    from origin.registry import Registry
    from origin.workspace.accounts import Accounts

    if not Accounts(_home(args) / "users.json").remove(args.name):
        print(f"edgepick: no user {args.name!r}", file=sys.stderr)
        return 1
    Registry(args.registry).audit(
        "user-remove", author=os.environ.get("USER", "admin"), reason="", user=args.name
    )
    print(f"edgepick workspace: user {args.name} removed (their sessions are ended)")
    return 0


def _user_role(args: argparse.Namespace) -> int:
    """Give a user another role: their sessions end, they sign in again under it."""
    from origin.registry import Registry
    from origin.workspace.accounts import AccountError, Accounts

    try:
        user = Accounts(_home(args) / "users.json").set_role(args.name, args.role)
    except AccountError as exc:
        print(f"edgepick: {exc}", file=sys.stderr)
        return 1
    Registry(args.registry).audit(
        "user-role",
        author=os.environ.get("USER", "admin"),
        reason="",
        user=user.name,
        role=user.role,
    )
    print(f"edgepick workspace: user {user.name} is now {user.role} (their sessions are ended)")
    return 0


def _user_unlock(args: argparse.Namespace) -> int:
    """Forget a name's (or a client address's) failed sign-ins: the throttle lets it in again."""
    from origin.workspace.accounts import Throttle

    key = f"address:{args.name}" if args.address else f"name:{args.name}"
    cleared = Throttle(_home(args) / "throttle.db").clear(key)
    print(f"edgepick workspace: {key} unlocked ({cleared} failed sign-in(s) forgotten)")
    return 0


def _without_header(text: str) -> str:
    """A pulled file's text without the header lines an earlier pull wrote."""
    lines = [line for line in text.splitlines() if not PULLED.match(line) and line != f"# {HINT}"]
    return "\n".join(lines).lstrip("\n") + "\n"


def _pull(args: argparse.Namespace) -> int:
    from origin.registry import Registry
    from origin.workspace.tomlout import dumps
    from origin.workspace.versions import Versions

    versions = Versions(Registry(args.registry))
    if args.draft:
        from origin.workspace.drafts import Drafts

        draft = Drafts(_home(args) / "drafts").get(args.draft)
        vid, config, what = draft.base, draft.config, f"draft {draft.id} ({draft.status})"
        # the draft's own config, not version vid: the heading says it is based on it
        header = f"edgepick {what}, based on config version {vid} (edgepick pull)\n{HINT}"
    else:
        found = versions.head()
        if found is None:
            print(f"edgepick: no config version in {args.registry} yet", file=sys.stderr)
            return 1
        vid, config, what = found, versions.get(found), "the live config"
        header = f"edgepick config version {vid} (edgepick pull: {what})\n{HINT}"
    kept = None if args.draft else versions.text(vid)
    if kept is not None:  # the file it was pushed as: its comments and layout
        text = "".join(f"# {line}\n" for line in header.splitlines()) + _without_header(kept)
    else:
        text = dumps(config, header)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        based = "based on version" if args.draft else "version"
        print(f"edgepick: {what}, {based} {vid} -> {args.output}", file=sys.stderr)
    return 0


def _push(args: argparse.Namespace) -> int:
    from compile.site import compile_site
    from origin.workspace.accounts import User
    from origin.workspace.drafts import WorkflowError
    from origin.workspace.versions import version_id

    text = Path(args.config).read_text(encoding="utf-8")
    config = tomllib.loads(text)
    compile_site(config, None, args.config)  # ConfigError: every problem, with its path
    ws = _workspace(args)
    author = User(args.author, "editor")
    if ws.versions.head() is None:
        vid = ws.seed(config, args.author, args.config, text)
        print(f"edgepick: {args.config} is the first config version ({vid})")
        return 0
    head, live = ws.head()
    pulled = PULLED.search(text)
    if pulled and pulled.group(1) != head and not args.force:
        print(
            f"edgepick: {args.config} was pulled from version {pulled.group(1)}, but the live "
            f"config is now {head}: pull again and redo your change (or --force)",
            file=sys.stderr,
        )
        return 1
    if version_id(config) == version_id(live):
        print("edgepick: nothing to push: the file is the live config")
        return 0
    try:
        draft = ws.drafts.create(args.message or f"pushed {args.config}", author, head, config)
        ws.versions.keep_text(version_id(config), text)  # pull gives it back once published
        ws.audit("draft-create", author, args.message, draft=draft.id, base=head, source="push")
        ws.step(draft, author, "submit", args.message or "pushed from git")
    except WorkflowError as exc:
        print(f"edgepick: {exc}", file=sys.stderr)
        return 1
    print(f"edgepick: pushed as draft {draft.id}, in review (an approver publishes it)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's subcommands to ``sub``."""

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--registry", default=DEFAULT_REGISTRY, help="snapshot registry directory")
        p.add_argument(
            "--home", help="workspace data (accounts, drafts; default REGISTRY/workspace)"
        )

    w = sub.add_parser("workspace", help="serve the marketers' workspace (web app)")
    common(w)
    w.add_argument("--host", default="127.0.0.1")
    w.add_argument("--port", type=int, default=DEFAULT_PORT)
    w.add_argument("--config", help="site config (TOML) to seed the first version from")
    w.add_argument("--model", help="base model (JSON) when the live snapshot has no learned one")
    w.add_argument("--target", action="append", help="publish target (as for edgepick publish)")
    w.add_argument("--edge-url", default="http://127.0.0.1:8787", help="the worker, for previews")
    w.add_argument("--preview-key", help="the worker's preview secret (default: $PREVIEW_KEY)")
    w.add_argument("--personas", help="personas (TOML; default: the sample store's)")
    w.add_argument("--store", help="the collector's event store (SQLite), for results")
    w.add_argument("--htmx", help="htmx.min.js (default: node_modules/htmx.org/dist)")
    w.add_argument(
        "--secure-cookie", action="store_true", help="HTTPS only session cookie (behind TLS)"
    )
    w.add_argument("--log-level", default="warning")
    w.set_defaults(run=_serve)
    ws = w.add_subparsers(dest="workspace_command")
    u = ws.add_parser("user", help="workspace accounts")
    us = u.add_subparsers(dest="user_command", required=True)
    a = us.add_parser("add", help="add a user (password from stdin, or asked)")
    common(a)
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=["viewer", "editor", "approver"])
    a.add_argument(
        "--replace", action="store_true", help="reset an existing user (their sessions end)"
    )
    a.set_defaults(run=_user_add)
    r = us.add_parser("remove", help="delete a user (their sessions end)")
    common(r)
    r.add_argument("name")
    r.set_defaults(run=_user_remove)
    ro = us.add_parser("role", help="give a user another role (their sessions end)")
    common(ro)
    ro.add_argument("name")
    ro.add_argument("role", choices=["viewer", "editor", "approver"])
    ro.set_defaults(run=_user_role)
    k = us.add_parser("unlock", help="forget a user's failed sign-ins (the throttle)")
    common(k)
    k.add_argument("name", help="a user name (or, with --address, a client address)")
    k.add_argument("--address", action="store_true", help="NAME is a client address")
    k.set_defaults(run=_user_unlock)
    pl = sub.add_parser("pull", help="write the live config version (or a draft) as TOML")
    common(pl)
    pl.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    pl.add_argument("--draft", help="a draft's config instead of the live one")
    pl.set_defaults(run=_pull)
    ps = sub.add_parser("push", help="open a draft for review from a config file")
    common(ps)
    ps.add_argument("config", help="site config (TOML)")
    ps.add_argument("--author", default=os.environ.get("USER", "developer"))
    ps.add_argument("--message", default="", help="what the change is (the draft's title)")
    ps.add_argument("--force", action="store_true", help="push even if the live config moved")
    ps.set_defaults(run=_push)
