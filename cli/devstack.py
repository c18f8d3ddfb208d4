"""Run the local stack: the sample store origin, the collector and the worker under
``wrangler dev``.

Used by ``make dev``, ``make demo``, the end-to-end tests and the load tests. Every process
starts in its own process group on 127.0.0.1 and is stopped with the whole group, so nothing
outlives its owner.

``make dev`` (``main``) wires the three together the way ``wrangler.toml`` says: the sample store
on ``ORIGIN_URL``'s port, ``edgepick serve`` on ``COLLECTOR_URL``'s port (8790) signing with the
``EVENTS_SECRET`` of ``.dev.vars`` (``make dev-vars``), the worker on 8787 (``dev_plan``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from compile import defaults
from core.snapshot import decode_header
from origin.publish import CURRENT_KEY, blob_key
from origin.registry import Registry
from origin.targets import parse_target, quiet_env

ROOT = Path(__file__).resolve().parent.parent
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
WORKER_PORT = 8787  # wrangler dev's default (wrangler.toml sets no [dev] port)
COLLECTOR_PATH = "/v1/events"  # origin.collector's event route
SECRETS = ("COOKIE_KEYS", "EVENTS_SECRET", "PREVIEW_KEY", "IDENTITY_KEY", "HEALTH_KEY")  # .dev.vars
OPTIONAL = ("HEALTH_KEY",)  # a .dev.vars written before it existed still works


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A child process in its own process group, with its output in a log file.

    ``piped``: stdin and stdout are pipes to talk to it through (only stderr goes to the log).
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path = ROOT,
        piped: bool = False,
    ) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=dict(env or os.environ),
            stdout=subprocess.PIPE if piped else self._out,
            stderr=self._out if piped else subprocess.STDOUT,
            stdin=subprocess.PIPE if piped else subprocess.DEVNULL,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 5.0) -> None:
        stop_all([self], timeout)

    def signal_group(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)


def stop_all(processes: Sequence[Process], timeout: float = 5.0) -> None:
    """Stop every process group: all are sent SIGTERM first, then waited for together, then
    whatever is left is killed. A second Ctrl-C or a SIGTERM meanwhile cannot cut this short,
    so nothing outlives its owner."""
    guard = threading.current_thread() is threading.main_thread()
    previous = (
        {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        if guard
        else {}
    )
    try:
        for process in processes:
            process.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.popen.wait(max(deadline - time.monotonic(), 0.05))
            except subprocess.TimeoutExpired:
                process.signal_group(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(timeout)
        for process in processes:
            process._out.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a ``kill``, a CI cancel, a ``timeout``) raises KeyboardInterrupt, like Ctrl-C,
    so the owner's ``finally`` stops its children."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_http(
    url: str, process: Process, timeout: float = 90.0, ok: tuple[int, ...] = (200,)
) -> None:
    """Poll ``url`` until it answers one of ``ok``; raise with the log's tail if it never does."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                if response.status in ok:
                    return
                last = f"status {response.status}"
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return
            last = f"status {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.3)
    raise TimeoutError(f"{process.name} not ready at {url} ({last}):\n{process.tail()}")


def start_store(port: int, logs: Path) -> Process:
    process = Process(
        "sample store",
        [sys.executable, str(defaults.path("store_origin.py")), "--port", str(port)],
        logs / "store.log",
    )
    wait_http(f"http://127.0.0.1:{port}/", process, timeout=20)
    return process


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def pinned_worker(folder: Path, root: Path = ROOT) -> Path:
    """The worker bundle built once into ``folder`` with a ``wrangler.toml`` of its own (the
    repository's top-level settings, no ``[build]``): a ``wrangler dev`` run from it serves
    exactly the code of this moment, never rebuilt or restarted when ``core/`` or ``edge/``
    change meanwhile. Returns the config's path."""
    subprocess.run(
        [sys.executable, "-m", "compile.bundle", str(folder)],
        cwd=root,
        check=True,
        timeout=120,
        stdout=sys.stderr,  # its progress line: a caller printing JSON keeps stdout for it
    )
    settings = tomllib.loads((root / "wrangler.toml").read_text())
    keep = ("name", "compatibility_date", "compatibility_flags", "kv_namespaces")
    lines = [f"{k} = {_toml_value(settings[k])}" for k in keep if k in settings]
    lines.insert(1, 'main = "entry_local.py"')
    lines.append("[vars]")
    lines += [f"{k} = {_toml_value(v)}" for k, v in settings.get("vars", {}).items()]
    config = folder / "wrangler.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def start_wrangler(
    port: int,
    persist: Path,
    variables: Mapping[str, str],
    logs: Path,
    ready_path: str = "/_edgepick/health",
    timeout: float = 120.0,
    config: Path | None = None,
    cwd: Path = ROOT,
) -> Process:
    """``wrangler dev`` on 127.0.0.1:port with local KV in ``persist``; ready when it answers.

    ``config``: a ``wrangler.toml`` other than the repository's (``pinned_worker``); ``cwd``:
    where it runs (and so its build step)."""
    args = [
        str(WRANGLER),
        "dev",
        *(["--config", str(config)] if config else []),
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--inspector-port",
        str(free_port()),
        "--persist-to",
        str(persist),
    ]
    for name, value in variables.items():
        args += ["--var", f"{name}:{value}"]
    process = Process("wrangler dev", args, logs / f"wrangler-{port}.log", quiet_env(), cwd)
    wait_http(f"http://127.0.0.1:{port}{ready_path}", process, timeout=timeout, ok=(200, 503))
    return process


def start_collector(
    port: int, store: Path, registry: Path, secret: str, logs: Path, timeout: float = 30.0
) -> Process:
    """``edgepick serve`` on 127.0.0.1:port: events into ``store``, signed with ``secret``."""
    process = Process(
        "edgepick serve",
        [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--port",
            str(port),
            "--store",
            str(store),
            "--registry",
            str(registry),
            "--secret",
            secret,
        ],
        logs / f"serve-{port}.log",
    )
    wait_http(f"http://127.0.0.1:{port}/health", process, timeout=timeout)
    return process


def read_dev_vars(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a ``.dev.vars`` file (what wrangler dev reads as secrets)."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name and not name.startswith("#"):
            found[name.strip()] = value.strip().strip('"')
    return found


@dataclass(frozen=True, slots=True)
class DevPlan:
    """How ``make dev`` wires the local loop (all from ``wrangler.toml`` and ``.dev.vars``)."""

    worker_port: int
    store_port: int
    collector_port: int
    collector_url: str  # what the worker ships events to (wrangler.toml's COLLECTOR_URL)
    events_secret: str  # the collector's --secret: the worker's EVENTS_SECRET
    worker_vars: dict[str, str]  # --var NAME:VALUE for wrangler dev (secrets without .dev.vars)


def dev_plan(root: Path = ROOT) -> DevPlan:
    """The dev stack for the checkout at ``root``: ports from ``wrangler.toml``'s ``[vars]``,
    secrets from ``.dev.vars`` when ``make dev-vars`` wrote it, else fresh random ones passed
    to the worker as ``--var`` (and the events secret to the collector)."""
    variables = tomllib.loads((root / "wrangler.toml").read_text())["vars"]
    origin, collector = urlsplit(variables["ORIGIN_URL"]), urlsplit(variables["COLLECTOR_URL"])
    for url in (origin, collector):
        if url.hostname != "127.0.0.1" or url.port is None:
            raise ValueError(f"wrangler.toml: {url.geturl()} is not http://127.0.0.1:PORT")
    if collector.path != COLLECTOR_PATH:
        raise ValueError(f"wrangler.toml: COLLECTOR_URL must end in {COLLECTOR_PATH}")
    dev_vars = root / ".dev.vars"
    worker_vars: dict[str, str] = {}
    if dev_vars.exists():
        given = read_dev_vars(dev_vars)
        missing = [name for name in SECRETS if not given.get(name) and name not in OPTIONAL]
        if missing:
            raise ValueError(f"{dev_vars} lacks {', '.join(missing)}: delete it, run make dev-vars")
        secret = given["EVENTS_SECRET"]
    else:
        secret = secrets.token_hex(16)
        worker_vars = {
            "COOKIE_KEYS": f"dev:{secrets.token_hex(16)}",
            "EVENTS_SECRET": secret,
            "PREVIEW_KEY": secrets.token_hex(16),
            "IDENTITY_KEY": secrets.token_hex(16),
            "HEALTH_KEY": secrets.token_hex(16),
        }
    return DevPlan(
        worker_port=WORKER_PORT,
        store_port=origin.port,
        collector_port=collector.port,
        collector_url=variables["COLLECTOR_URL"],
        events_secret=secret,
        worker_vars=worker_vars,
    )


def live_snapshot(registry: Path) -> bytes | None:
    """The snapshot the registry says is live (a workspace publish, a rollback, a sync round),
    or None when it has none yet."""
    return Registry(registry).current_blob() if registry.exists() else None


def serve_again(blob: bytes, state: Path) -> None:
    """The live snapshot written to the worker's local KV (its blob, then the pointer), as
    ``origin.publish`` writes a target, without a new entry in the registry's audit log."""
    target = parse_target(f"wrangler:{state}")
    sid = decode_header(blob)[0].id
    target.put(blob_key(sid), blob)
    target.put(CURRENT_KEY, sid.encode())


def main(
    work: Path | None = None, root: Path = ROOT, forever: bool = True, fresh: bool = False
) -> list[Process]:
    """``make dev``: the sample store, the collector and the worker (see ``dev_plan``); runs
    until Ctrl-C (``forever=False``: returns the started processes). What the worker serves:
    the registry's live snapshot when there is one (a restart keeps what the workspace, a
    rollback or ``sync`` published), else (or ``fresh``: ``make dev FRESH=1``) the fixture,
    compiled; either is published to the worker's local KV."""
    plan = dev_plan(root)
    out = work or root / "out"
    state = root / ".wrangler" / "state" if work is None else out / "state"
    logs = out / "logs"
    snapshot = out / "site.snap"
    registry = out / "registry"
    run = [sys.executable, "-m", "cli.main"]
    live = None if fresh else live_snapshot(registry)
    if live is not None:  # to the worker's KV only: the registry's history stays as it was
        serve_again(live, state)
        print("edgepick: serving the registry's live snapshot (make dev FRESH=1: the fixture)")
    else:
        subprocess.run(
            [
                *run,
                "compile",
                "fixtures/site.toml",
                "--model",
                "fixtures/model.json",
                "-o",
                str(snapshot),
            ],
            cwd=ROOT,
            check=True,
        )
        subprocess.run(
            [
                *run,
                "publish",
                str(snapshot),
                "--target",
                f"wrangler:{state}",
                "--registry",
                str(registry),
                "--message",
                "make dev",
            ],
            cwd=ROOT,
            check=True,
        )
    processes: list[Process] = []
    try:
        processes.append(start_store(plan.store_port, logs))
        processes.append(
            start_collector(
                plan.collector_port, out / "events.db", registry, plan.events_secret, logs
            )
        )
        processes.append(start_wrangler(plan.worker_port, state, plan.worker_vars, logs))
    except BaseException:
        stop_all(list(reversed(processes)))
        raise
    print(
        f"edgepick: worker on http://127.0.0.1:{plan.worker_port}, sample store on "
        f":{plan.store_port}, collector on {plan.collector_url} (store {out / 'events.db'}, "
        f"registry {registry}); logs in {logs}; Ctrl-C stops all three",
        flush=True,
    )
    if not forever:
        return processes
    try:
        with sigterm_interrupts():
            while all(p.alive() for p in processes):
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all(list(reversed(processes)))
    return processes


if __name__ == "__main__":
    main(fresh="--fresh" in sys.argv[1:])
