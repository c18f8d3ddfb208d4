"""The production entry (``entry.Default``, a WorkerEntrypoint) under Pyodide 0.28.2 in Node.

Real WebAssembly, the real ``workers`` SDK (workers-runtime-sdk 1.9.5), a real compiled snapshot's
bytes in a KV stand-in, HTMLRewriter by html-rewriter-wasm (lol-html), a real sample store origin
and a real collector on 127.0.0.1. One Pyodide load serves every request of this module
(tests/edge/pyodide_harness.mjs, driven line by line over stdin/stdout).
"""

from __future__ import annotations

import base64
import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli.devstack import ROOT, Process, free_port, start_store
from compile.bundle import build as build_bundle
from core import events
from core.cookie import Keyring
from core.features import VisitorState
from core.snapshot import decode_header
from tests.edge.helpers import Collector, cookie_state, decision_marks

HARNESS = ROOT / "tests" / "edge" / "pyodide_harness.mjs"
PYODIDE = ROOT / "node_modules" / "pyodide" / "package.json"
SDK_WHEEL = ROOT / "build" / "wheels" / "workers_runtime_sdk-1.9.5-py3-none-any.whl"
INDEX = ROOT / "fixtures" / "pages" / "index.html"
EVENTS_SECRET = "pyodide-events"
KEYRING = Keyring("k1", {"k1": b"pyodide-cookie-secret"})
UA_MOBILE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
UA_DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
EDGE = "https://shop.test"

pytestmark = [
    pytest.mark.skipif(
        not PYODIDE.exists(), reason="node_modules/pyodide missing: run `make setup` (npm ci)"
    ),
    pytest.mark.skipif(
        not SDK_WHEEL.exists(),
        reason=f"{SDK_WHEEL.relative_to(ROOT)} missing: run `make setup` (it pip-downloads it)",
    ),
]


class Reply(dict[str, Any]):
    """One harness reply; for fetches, helpers over the response."""

    @property
    def body(self) -> bytes:
        return base64.b64decode(self["body_b64"])

    @property
    def html(self) -> str:
        return self.body.decode()

    def header(self, name: str) -> str | None:
        return next((v for k, v in self["headers"] if k == name), None)

    def cookie_value(self) -> str:
        (set_cookie,) = self["set_cookie"]
        name, value = set_cookie.split(";")[0].split("=", 1)
        assert name == "ep"
        return str(value)


class Harness:
    """``node pyodide_harness.mjs`` as a child in its own process group, spoken to in JSON lines."""

    def __init__(self, config: Path, log: Path) -> None:
        self.process = Process("harness", ["node", str(HARNESS), str(config)], log, piped=True)
        self.popen = self.process.popen
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.ready = self._next(timeout=120)
        except BaseException:
            self.stop()
            raise

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            line = raw.decode(errors="replace")
            if line.startswith("@@ "):
                self.lines.put(line[3:])

    def _next(self, timeout: float) -> Reply:
        try:
            return Reply(json.loads(self.lines.get(timeout=timeout)))
        except queue.Empty:
            raise TimeoutError(f"no reply from the harness:\n{self.tail()}") from None

    def tail(self, lines: int = 40) -> str:
        return self.process.tail(lines)

    def call(self, timeout: float = 30, **command: Any) -> Reply:
        assert self.popen.stdin is not None
        self.popen.stdin.write(json.dumps(command).encode() + b"\n")
        self.popen.stdin.flush()
        reply = self._next(timeout)
        assert "error" not in reply, f"{reply['error']}\n{self.tail()}"
        return reply

    def get(
        self,
        path: str,
        cookie_value: str | None = None,
        cf: dict[str, str] | None = None,
        **headers: str,
    ) -> Reply:
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        hdrs.setdefault("user-agent", UA_DESKTOP)  # a browser (no User-Agent: a tool, a bot)
        if cookie_value is not None:
            hdrs["cookie"] = f"ep={cookie_value}"
        return self.call(op="fetch", url=EDGE + path, headers=hdrs, cf=cf or {"country": "US"})

    def stop(self) -> None:
        if self.process.alive() and self.popen.stdin is not None:
            try:  # ask first: the harness exits by itself
                self.popen.stdin.write(b'{"op": "exit"}\n')
                self.popen.stdin.close()
                self.popen.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.process.stop()


@dataclass
class Stack:
    harness: Harness
    collector: Collector
    snapshot_id: str
    kv: dict[str, dict[str, str]]


def kv_with(blob_file: Path, snapshot_id: str) -> dict[str, dict[str, str]]:
    return {"snap/current": {"text": snapshot_id}, f"snap/{snapshot_id}": {"file": str(blob_file)}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fixture_blob: bytes) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("pyodide")
    build_bundle(tmp / "bundle")
    snapshot_id = decode_header(fixture_blob)[0].id
    (tmp / "site.snap").write_bytes(fixture_blob)
    collector = Collector(EVENTS_SECRET.encode())
    store_port = free_port()
    store: Process | None = None
    harness: Harness | None = None
    try:
        store = start_store(store_port, tmp)
        kv = kv_with(tmp / "site.snap", snapshot_id)
        config = {
            "bundle": str(tmp / "bundle"),
            "sdk_wheel": str(SDK_WHEEL),
            "env": {
                "ORIGIN_URL": f"http://127.0.0.1:{store_port}",
                "COLLECTOR_URL": f"http://127.0.0.1:{collector.port}/v1/events",
                "EVENTS_SECRET": EVENTS_SECRET,
                "COOKIE_KEYS": "k1:pyodide-cookie-secret",
                "HEALTH_KEY": "pyodide-health",
                "SNAPSHOT_TTL_SECONDS": "0",
            },
            "kv": kv,
        }
        (tmp / "harness.json").write_text(json.dumps(config))
        harness = Harness(tmp / "harness.json", tmp / "harness.log")
        assert harness.ready["python"].startswith("3.13") and harness.ready["pyodide"] == "0.28.2"
        yield Stack(harness, collector, snapshot_id, kv)
    finally:
        if harness is not None:
            harness.stop()
        if store is not None:
            store.stop()
        collector.stop()


def state_of(value: str) -> VisitorState:
    return cookie_state(value, KEYRING)


def test_personalized_page_and_cookie_honoured(stack: Stack) -> None:
    first = stack.harness.get("/", user_agent=UA_MOBILE)
    assert first["status"] == 200
    assert first.html.count("data-edgepick-decision=") == 4, first.html  # recs is async
    assert "Loading recommendations" in first.html
    assert first.header("content-length") is None  # the rewritten body has another length
    assert (first.header("server-timing") or "").startswith("edgepick;dur=")
    (set_cookie,) = first["set_cookie"]
    assert all(flag in set_cookie for flag in ("HttpOnly", "Secure", "SameSite=Lax"))
    state = state_of(first.cookie_value())
    assert state.page_views == 1 and len(state.decisions) == 5

    second = stack.harness.get("/c/running", first.cookie_value(), user_agent=UA_MOBILE)
    assert second["status"] == 200
    again = state_of(second.cookie_value())
    assert again.visitor_id == state.visitor_id
    assert again.page_views == 2 and dict(again.affinity).get("running") == 1.0
    assert decision_marks(second.html) and decision_marks(second.html) <= decision_marks(
        first.html
    )  # session reuse


@pytest.mark.parametrize("kind", ["tampered", "truncated", "oversized"])
def test_bad_cookie_is_ignored_without_error(stack: Stack, kind: str) -> None:
    good = stack.harness.get("/").cookie_value()
    i = len(good) // 3
    bad = {
        "tampered": good[:i] + ("A" if good[i] != "A" else "B") + good[i + 1 :],
        "truncated": good[: len(good) // 2],
        "oversized": "v1." + "x" * 4200,
    }[kind]
    reply = stack.harness.get("/", bad)
    assert reply["status"] == 200 and reply.html.count("data-edgepick-decision=") == 4
    fresh = state_of(reply.cookie_value())
    assert fresh.visitor_id != state_of(good).visitor_id and fresh.page_views == 1
    health = json.loads(
        stack.harness.get("/_edgepick/health", x_edgepick_health_key="pyodide-health").body
    )
    assert health["errors"] == 0 and health["last_error"] == ""


def test_health_and_decide_api(stack: Stack) -> None:
    health = stack.harness.get("/_edgepick/health", x_edgepick_health_key="pyodide-health")
    assert health["status"] == 200
    body = json.loads(health.body)
    assert body["ok"] is True and body["snapshot"] == stack.snapshot_id
    assert body["snapshot_errors"] == 0 and body["config_problems"] == []

    decide = stack.harness.get("/_edgepick/decide?slots=recs,nope&path=/")
    assert decide["status"] == 200
    assert (decide.header("content-type") or "").startswith("application/json")
    answer = json.loads(decide.body)
    assert answer["snapshot"] == stack.snapshot_id and answer["unknown"] == ["nope"]
    (recs,) = answer["decisions"]
    assert recs["slot"] == "recs" and 0 < recs["propensity"] <= 1 and recs["content"]


def test_exposures_reach_the_collector_through_wait_until(stack: Stack) -> None:
    stack.harness.get("/")  # this isolate now knows which slots "/" holds: the page streams
    stack.harness.call(op="settle")  # earlier requests' events: out of the way
    reply = stack.harness.get("/", user_agent=UA_MOBILE, cf={"country": "DE"})
    # handed to ctx.waitUntil: the page's one signed batch (a streamed page's once its document
    # has passed, edge.presence; "/" may serve a landing variant this isolate has not seen yet,
    # which is buffered); exactly one page view reaches the collector either way
    assert reply["wait_until"] >= 1
    visitor = state_of(reply.cookie_value()).visitor_id
    settled = stack.harness.call(op="settle")
    assert settled["rejected"] == [] and settled["count"] >= 1
    for _ in range(5):  # a streamed page's events hand their delivery to waitUntil in turn
        if stack.harness.call(op="settle")["count"] == 0:
            break
    everything = [e for e in stack.collector.events() if e["visitor"] == visitor]
    (view,) = [e for e in everything if e["type"] == events.PAGE_VIEW]
    assert view["path"] == "/" and events.problem(view) is None
    mine = [e for e in everything if e["type"] == events.EXPOSURE]
    assert {e["slot"] for e in mine} == {"landing", "headline", "promo", "hero", "cta"}
    assert {e["id"] for e in mine if e["slot"] != "landing"} == decision_marks(reply.html)
    for event in mine:
        assert events.problem(event) is None, event
        assert event["device"] == "mobile" and event["country"] == "DE"
        assert event["snapshot"] == stack.snapshot_id
    hero = next(e for e in mine if e["slot"] == "hero")
    assert hero["variant"] != "hero-price-drop"  # excluded for EU visitors


def test_empty_kv_serves_the_origin_page_byte_for_byte(stack: Stack) -> None:
    try:
        stack.harness.call(op="isolate", kv={})
        reply = stack.harness.get("/")
        assert reply["status"] == 200 and reply.body == INDEX.read_bytes()
        assert reply["set_cookie"] == [] and reply["wait_until"] == 0
        assert reply.header("x-origin") == "sample-store"
        health = json.loads(
            stack.harness.get("/_edgepick/health", x_edgepick_health_key="pyodide-health").body
        )
        assert health["ok"] is False and health["snapshot"] is None
    finally:
        stack.harness.call(op="isolate", kv=stack.kv)
    assert (
        json.loads(
            stack.harness.get("/_edgepick/health", x_edgepick_health_key="pyodide-health").body
        )["ok"]
        is True
    )


def test_a_queue_producer_binding_takes_the_events(stack: Stack) -> None:
    """The production transport: with a Queues producer bound as EVENTS, batches go there."""
    try:
        stack.harness.call(op="isolate", kv=stack.kv, queue=True)
        stack.harness.call(op="settle")
        before = len(stack.collector.events())
        reply = stack.harness.get("/")
        assert reply["wait_until"] == 1
        stack.harness.call(op="settle")
        messages = stack.harness.call(op="queued")["messages"]
        assert len(messages) == 1
        batch = json.loads(messages[0])["events"]
        slots = {e["slot"] for e in batch if e["type"] == events.EXPOSURE}
        assert slots == {"landing", "headline", "promo", "hero", "cta"}
        assert [e["type"] for e in batch].count(events.PAGE_VIEW) == 1
        assert all(events.problem(e) is None for e in batch)
        assert len(stack.collector.events()) == before  # nothing went over HTTP
        # the production entry's consumer delivers them, signed, and acks once answered 2xx
        consumed = stack.harness.call(op="consume", messages=[*messages, "not a batch"])
        assert consumed == {"acked": [0, 1], "retried": []}
        delivered = stack.collector.events()[before:]  # each batch's signature verified
        assert [e["id"] for e in delivered] == [e["id"] for e in batch]
    finally:
        stack.harness.call(op="isolate", kv=stack.kv)


def test_a_preview_fills_async_slots_in_place_with_a_banner(stack: Stack) -> None:
    """lol-html (the real HTMLRewriter's engine): the async slot is filled and loses its
    placeholder attribute, the banner is appended to <body>; nothing is logged."""
    from core import preview

    stack.harness.call(op="settle")
    logged = len(stack.collector.events())
    # no PREVIEW_KEY in this isolate: the token is refused, visibly; nothing is logged
    reply = stack.harness.get("/?edgepick_preview=abc.def")
    assert reply.header("x-edgepick-preview") == "invalid" and reply["wait_until"] == 0
    assert "edgepick preview refused (previews are not configured)" in reply.html
    assert reply.html.index("data-edgepick-preview-banner") < reply.html.index("</body>")
    assert reply["set_cookie"] == []
    try:
        stack.harness.call(op="isolate", kv=stack.kv, env={"PREVIEW_KEY": "pyodide-preview"})
        found = preview.Preview(2_000_000_000, {}, {"recs": "recs-kids"})
        token = preview.encode(found, b"pyodide-preview")
        reply = stack.harness.get(f"/?edgepick_preview={token}")
        assert reply.header("x-edgepick-preview") == "1" and reply["wait_until"] == 0
        assert "data-edgepick-async" not in reply.html and "recs=recs-kids" in reply.html
        assert reply.html.count("data-edgepick-decision=") == 5 and reply["set_cookie"] == []
        assert stack.harness.call(op="settle")["rejected"] == []
        assert len(stack.collector.events()) == logged  # nothing logged
    finally:
        stack.harness.call(op="isolate", kv=stack.kv)


@pytest.mark.parametrize("count", [128, None], ids=["8MiB", "endless"])
def test_a_chunked_beacon_body_is_read_only_up_to_the_limit(
    stack: Stack, count: int | None
) -> None:
    """No Content-Length (a chunked upload), 8 MiB or never ending: the worker reads at most
    the 16 KiB limit from the stream, cancels it, answers 413, and its memory stays flat."""
    cookie_value = stack.harness.get("/").cookie_value()
    reply = stack.harness.call(
        op="fetch",
        url=EDGE + "/_edgepick/events",
        method="POST",
        headers={"user-agent": UA_DESKTOP, "cookie": f"ep={cookie_value}"},
        stream={"chunk": 64 * 1024, "count": count},
        cf={"country": "US"},
    )
    assert reply["status"] == 413 and b"over 16 KB" in reply.body
    assert reply["pulled"] <= 3 * 64 * 1024  # the stream was cancelled after the first chunk
