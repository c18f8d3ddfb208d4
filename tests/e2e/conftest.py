"""The whole loop, for real, shared by the end-to-end scenarios (tests/e2e/test_*.py).

One stack per test session, every part a real process on 127.0.0.1:

- the sample store origin (``cli.devstack.start_store``);
- the collector: ``edgepick serve`` with a temporary SQLite store, a registry and a secret;
- between the two, ``Gate``: an HTTP hop that forwards every event batch to the collector and
  can fail like a network (refuse batches, lose acknowledgements, be down) for delivery tests;
- the worker under ``wrangler dev`` (real workerd), built once for the session
  (``cli.devstack.pinned_worker``: edits to ``core/`` or ``edge/`` meanwhile neither rebuild
  nor restart it), its local KV holding the fixture snapshot (published with ``edgepick
  publish --target wrangler:...``), ``COLLECTOR_URL`` pointing at the collector (through
  the gate) and ``EVENTS_SECRET`` matching it;
- a real browser per call of the ``browser`` fixture: ``tests/e2e/browser.mjs`` (Playwright from
  npm, Debian's chromium, a fresh profile each run) fed a JSON list of steps.

What the origin stored is read back through ``edgepick inspect ... --json`` (``Loop.inspect``);
``Loop.wait_stored`` polls the store (bounded in time) until the events a test expects are in.
Scenarios share the stack but each uses fresh browser contexts, hence fresh visitors: they
assert on their own visitors, decisions and users, or on counts they take before and after.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cli.devstack import (
    ROOT,
    WRANGLER,
    Process,
    free_port,
    pinned_worker,
    start_collector,
    start_store,
    start_wrangler,
)
from core import cookie, identity, preview
from core.cookie import Keyring
from core.features import VisitorState
from core.snapshot import decode_header
from origin.store import SqliteStore

DRIVER = Path(__file__).with_name("browser.mjs")
CHROMIUM = Path("/usr/bin/chromium")
EDGEPICK = [sys.executable, "-m", "cli.main"]
COOKIE = "ep"  # fixtures/site.toml [cookie] name
KID = "e2e"
WAIT_SECONDS = 20.0  # the longest any scenario waits for events to reach the store
# Headless Chromium announces itself as "HeadlessChrome", which the edge rightly counts as a bot
# (nothing logged); the browser presents what the same Chromium sends when a person runs it.
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)


class BrowserError(AssertionError):
    pass


@dataclass
class BrowserRun:
    """What one browser run returned: a result per step, and every finished request."""

    results: list[dict[str, Any]]
    requests: list[dict[str, Any]]

    def value(self, index: int) -> Any:
        return self.results[index].get("value")

    def cookie(self, name: str = COOKIE) -> str | None:
        """The named cookie's value from the last ``{"cookies": true}`` step (None if unset)."""
        jars = [r["value"] for r in self.results if isinstance(r.get("value"), list)]
        assert jars, 'add a {"cookies": true} step to read cookies'
        return next((c["value"] for c in jars[-1] if c["name"] == name), None)


class Gate:
    """The network between the worker and the collector: an HTTP hop on 127.0.0.1 that forwards
    each event batch, body and headers as they came, to the real collector, and that a test can
    make fail like a network does: refuse the next batches (503), lose the collector's
    acknowledgement of the next ones (forwarded and stored, then 503 to the worker), or be down
    (connections closed unanswered)."""

    def __init__(self, collector_port: int) -> None:
        self.collector = f"http://127.0.0.1:{collector_port}/v1/events"
        self.lock = threading.Lock()
        self.refuse = 0  # batches still to refuse
        self.lose = 0  # acknowledgements still to lose
        self.down = False
        self.refused = self.lost = self.forwarded = self.cut = 0
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with gate.lock:
                    if gate.down:
                        gate.cut += 1
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    refuse = gate.refuse > 0
                    gate.refuse -= refuse
                    gate.refused += refuse
                if refuse:
                    self.answer(503, b'{"error": "gate: refused"}')
                    return
                forward = urllib.request.Request(
                    gate.collector,
                    data=body,
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                )
                try:
                    with urllib.request.urlopen(forward, timeout=30) as response:
                        status, reply = response.status, response.read()
                except urllib.error.HTTPError as exc:
                    status, reply = exc.code, exc.read()
                except OSError as exc:
                    status, reply = 502, json.dumps({"error": f"gate: {exc}"}).encode()
                with gate.lock:
                    gate.forwarded += 1
                    lose = status == 200 and gate.lose > 0
                    gate.lose -= lose
                    gate.lost += lose
                if lose:
                    status, reply = 503, b'{"error": "gate: acknowledgement lost"}'
                self.answer(status, reply)

            def answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/events"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Loop:
    """The running stack and the helpers the scenarios use."""

    tmp: Path
    store_port: int = field(default_factory=free_port)
    collector_port: int = field(default_factory=free_port)
    edge_port: int = field(default_factory=free_port)
    events_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    cookie_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    preview_key: str = field(default_factory=lambda: secrets.token_hex(16))
    identity_key: str = field(default_factory=lambda: secrets.token_hex(16))
    snapshot_id: str = ""
    processes: list[Process] = field(default_factory=list)
    gate: Gate | None = None

    @property
    def db(self) -> Path:
        return self.tmp / "events.db"

    @property
    def registry(self) -> Path:
        return self.tmp / "registry"

    @property
    def kv(self) -> Path:
        return self.tmp / "kv"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.edge_port}"

    @property
    def collector_url(self) -> str:
        return f"http://127.0.0.1:{self.collector_port}/v1/events"

    def health(self) -> dict[str, Any]:
        """The worker's ``/_edgepick/health`` (``events``: what became of what it sent)."""
        status, _headers, body = self.http(
            "/_edgepick/health", headers={"x-edgepick-health-key": "e2e-health"}
        )
        assert status == 200, body
        found: dict[str, Any] = json.loads(body)
        return found

    def collector_health(self) -> dict[str, Any]:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.collector_port}/health", timeout=10
        ) as response:
            found: dict[str, Any] = json.loads(response.read())
            return found

    def worker_vars(self) -> dict[str, str]:
        return {
            "ORIGIN_URL": f"http://127.0.0.1:{self.store_port}",
            "COLLECTOR_URL": self.gate.url if self.gate else self.collector_url,
            "EVENTS_SECRET": self.events_secret,
            "COOKIE_KEYS": f"{KID}:{self.cookie_secret}",
            "HEALTH_KEY": "e2e-health",
            "PREVIEW_KEY": self.preview_key,
            "IDENTITY_KEY": self.identity_key,
            "SNAPSHOT_TTL_SECONDS": "0",
            "COOKIE_SECURE": "false",
        }

    # ---- the browser and plain HTTP clients ----

    def browse(
        self,
        steps: Sequence[Mapping[str, Any]],
        cookies: Sequence[Mapping[str, Any]] = (),
        timeout_ms: int = 15_000,
        user_agent: str = DESKTOP_UA,
    ) -> BrowserRun:
        """Run ``steps`` in a fresh Chromium profile (see tests/e2e/browser.mjs)."""
        payload = {
            "base": self.base,
            "steps": list(steps),
            "cookies": list(cookies),
            "timeout": timeout_ms,
            "executable": str(CHROMIUM),
            "userAgent": user_agent,
        }
        limit = 30 + timeout_ms / 1000 * (len(steps) + 1)
        done = subprocess.run(
            [node(), str(DRIVER)],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=limit,
        )
        try:
            out = json.loads(done.stdout)
        except json.JSONDecodeError:
            raise BrowserError(
                f"browser driver exited {done.returncode}: {done.stdout[-2000:]}"
                f"{done.stderr[-2000:]}"
            ) from None
        if "error" in out:
            raise BrowserError(f"step {out['step']} {steps[out['step']]!r}: {out['error']}")
        return BrowserRun(out["results"], out["requests"])

    def http(
        self, path: str, headers: Mapping[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        """A plain HTTP request to the worker (curl-like clients, prefetches)."""
        request = urllib.request.Request(self.base + path, headers=dict(headers or {}))
        request.method = method
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                found = {k.lower(): v for k, v in response.headers.items()}
                return response.status, found, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()

    # ---- tokens and cookies ----

    def keyring(self) -> Keyring:
        return Keyring(KID, {KID: self.cookie_secret.encode()})

    def state(self, value: str | None) -> VisitorState:
        """The visitor state inside an ``ep`` cookie value (it must verify)."""
        assert value, "no visitor cookie was set"
        decoded = cookie.decode(value, self.keyring(), VisitorState("none"))
        assert decoded.status.valid, decoded.status
        return decoded.state

    def identity_token(self, user: str, ttl: int = 600) -> str:
        return identity.sign(user, int(time.time()) + ttl, self.identity_key.encode())

    def preview_token(
        self,
        variants: Mapping[str, str],
        persona: Mapping[str, Any] | None = None,
        ttl: int = 600,
        key: str | None = None,
    ) -> str:
        found = preview.Preview(int(time.time()) + ttl, dict(persona or {}), dict(variants))
        return preview.encode(found, (key or self.preview_key).encode())

    # ---- the origin: the store, inspect, sync ----

    def wait_stored(
        self, check: Callable[[SqliteStore], Any], what: str, timeout: float = WAIT_SECONDS
    ) -> Any:
        """Poll the collector's store until ``check`` returns something truthy (returned);
        fail after ``timeout`` seconds naming ``what`` was awaited."""
        deadline = time.monotonic() + timeout
        store = SqliteStore(self.db)
        try:
            while True:
                found = check(store)
                if found:
                    return found
                if time.monotonic() > deadline:
                    raise AssertionError(f"not stored within {timeout:.0f} s: {what}")
                time.sleep(0.2)
        finally:
            store.close()

    def wait_events(
        self, visitor: str, exposures: int = 0, outcomes: int = 0, timeout: float = WAIT_SECONDS
    ) -> None:
        """Until the store holds at least this many exposures and outcomes of ``visitor``."""

        def enough(store: SqliteStore) -> bool:
            got = store.visitor_events(visitor)
            return len(got.exposure_events) >= exposures and len(got.outcome_events) >= outcomes

        self.wait_stored(
            enough, f"{exposures} exposures and {outcomes} outcomes of {visitor}", timeout
        )

    def count(self, slot: str | None = None) -> int:
        """Stored exposures (of one slot, or all)."""
        store = SqliteStore(self.db)
        try:
            return sum(1 for e in store.exposures() if slot is None or e["slot"] == slot)
        finally:
            store.close()

    def between(self, since_ms: int, until_ms: int) -> list[dict[str, Any]]:
        """Stored exposures and page views the edge stamped within [since_ms, until_ms]: the
        scenarios run one at a time, so these are the events a window of requests caused."""
        store = SqliteStore(self.db)
        try:
            found = list(store.exposures(since_ms, until_ms + 1))
            found += [v for v in store.page_views() if since_ms <= v["ts"] <= until_ms]
            return found
        finally:
            store.close()

    def wait_inspect(
        self,
        what: str,
        ident: str,
        check: Callable[[dict[str, Any]], bool],
        timeout: float = WAIT_SECONDS,
    ) -> dict[str, Any]:
        """``inspect`` until ``check`` holds for its answer; fail after ``timeout`` seconds with
        the last answer."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.inspect(what, ident)
            if found is not None and check(found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"inspect {what} {ident} after {timeout:.0f} s: {found}")
            time.sleep(0.3)

    def inspect(self, what: str, ident: str) -> dict[str, Any] | None:
        """``edgepick inspect WHAT IDENT --json`` against the collector's store (None: unknown)."""
        args = [*EDGEPICK, "inspect", what, ident, "--store", str(self.db), "--json"]
        if what == "user":
            args += ["--registry", str(self.registry)]
        done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=60)
        if done.returncode == 1 and done.stderr.startswith(f"edgepick: no {what} "):
            return None
        assert done.returncode == 0, done.stderr
        found: dict[str, Any] = json.loads(done.stdout)
        return found

    def sync(self) -> subprocess.CompletedProcess[str]:
        """One ``edgepick sync --once`` round on the collector's store, publishing to the KV
        the worker serves."""
        done = subprocess.run(
            [
                *EDGEPICK,
                "sync",
                str(ROOT / "fixtures" / "site.toml"),
                "--model",
                str(ROOT / "fixtures" / "model.json"),
                "--store",
                str(self.db),
                "--registry",
                str(self.registry),
                "--target",
                f"wrangler:{self.kv}",
                "--once",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail(40)}" for p in self.processes)


def node() -> str:
    found = shutil.which("node")
    assert found, "node is not on PATH (Node >= 20 is required)"
    return found


def publish(loop: Loop, blob: bytes) -> str:
    snapshot = loop.tmp / "site.snap"
    snapshot.write_bytes(blob)
    done = subprocess.run(
        [
            *EDGEPICK,
            "publish",
            str(snapshot),
            "--target",
            f"wrangler:{loop.kv}",
            "--registry",
            str(loop.registry),
            "--message",
            "e2e",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return decode_header(blob)[0].id


@pytest.fixture(scope="session")
def loop(tmp_path_factory: pytest.TempPathFactory, fixture_blob: bytes) -> Iterator[Loop]:
    """The sample store, the collector and the worker, started once for the session."""
    assert WRANGLER.exists(), "run `make setup` (npm ci) first: wrangler is missing"
    assert CHROMIUM.exists(), "run `make system-deps`: Debian's chromium is missing"
    running = Loop(tmp_path_factory.mktemp("loop"))
    running.gate = Gate(running.collector_port)
    try:
        running.snapshot_id = publish(running, fixture_blob)
        running.processes.append(start_store(running.store_port, running.tmp / "logs"))
        running.processes.append(
            start_collector(
                running.collector_port,
                running.db,
                running.registry,
                running.events_secret,
                running.tmp / "logs",
            )
        )
        running.processes.append(
            start_wrangler(
                running.edge_port,
                running.kv,
                running.worker_vars(),
                running.tmp / "logs",
                config=pinned_worker(running.tmp / "worker"),
            )
        )
        yield running
    finally:
        for process in reversed(running.processes):
            process.stop()
        running.gate.stop()


@pytest.fixture
def browser(loop: Loop) -> Callable[..., BrowserRun]:
    """Run browser steps against the worker; every call is a fresh browser profile."""
    return loop.browse
