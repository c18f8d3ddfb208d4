"""The worker as a transparent proxy, through ``wrangler dev`` (real workerd, real HTMLRewriter)
in front of an origin on 127.0.0.1 that streams its page slowly, hangs, or echoes what it got."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from cli.devstack import Process, free_port, pinned_worker, start_wrangler
from core.cookie import Keyring, decode
from core.features import VisitorState
from edge.io import STREAM_WAIT_S
from tests.edge.helpers import Collector, decision_marks
from tests.edge.test_wrangler_dev import BROWSER, KEYS, publish

HEAD = (
    "<!doctype html><html><head><title>slow</title></head><body>"
    '<h1 data-edgepick-slot="headline">Outdoor gear</h1>'
    '<div data-edgepick-slot="hero">hero</div>'
)
TAIL = '<a data-edgepick-slot="cta" href="/c/running">Shop now</a></body></html>'
TAIL_DELAY = 2.0  # seconds the origin waits between the head and the tail of its page


class Origin(BaseHTTPRequestHandler):
    """``/shop``: the page's head at once, its tail ``TAIL_DELAY`` s later (no Content-Length);
    ``/hang``: no answer for 5 s; anything else: a page listing the request headers it got."""

    tail_sent: ClassVar[list[float]] = []
    seen: ClassVar[list[dict[str, str]]] = []
    methods: ClassVar[list[str]] = []

    def do_HEAD(self) -> None:
        type(self).methods.append("HEAD")
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("etag", '"head-v1"')
        self.end_headers()

    def do_GET(self) -> None:
        if self.path.startswith("/hang"):
            time.sleep(5)
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("cache-control", "public, max-age=60")
        self.end_headers()
        if self.path == "/shop?stall":  # the head, then nothing for a minute
            self.wfile.write(HEAD.encode())
            self.wfile.flush()
            time.sleep(60)
        elif self.path.split("?")[0] == "/shop":
            self.wfile.write(HEAD.encode())
            self.wfile.flush()
            time.sleep(TAIL_DELAY)
            type(self).tail_sent.append(time.monotonic())
            self.wfile.write(TAIL.encode())
        else:
            self.wfile.write(b"<html><head></head><body>echo</body></html>")

    def log_message(self, *args: Any) -> None:
        pass


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.origin = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
        threading.Thread(target=self.origin.serve_forever, daemon=True).start()
        self.collector = Collector(b"proxy-events")
        self.port = free_port()
        self.tmp = tmp
        self.processes: list[Process] = []

    def variables(self) -> dict[str, str]:
        return {
            "ORIGIN_URL": f"http://127.0.0.1:{self.origin.server_address[1]}",
            "COLLECTOR_URL": f"http://127.0.0.1:{self.collector.port}/v1/events",
            "EVENTS_SECRET": "proxy-events",
            "COOKIE_KEYS": KEYS,
            "SNAPSHOT_TTL_SECONDS": "0",
            "ORIGIN_TIMEOUT_SECONDS": "1",
            "HEALTH_KEY": "proxy-health",
        }

    def get(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[Any, float, bytes]:
        """(response, when its first body byte arrived, the whole body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request(method, path, headers={"user-agent": BROWSER, **(headers or {})})
        response = connection.getresponse()
        first = response.read1(65536) if response.status != 504 and method != "HEAD" else b""
        arrived = time.monotonic()
        body = first + response.read()
        connection.close()
        return response, arrived, body


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fixture_blob: bytes) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("proxy")
    stack = Stack(tmp)
    (tmp / "site.snap").write_bytes(fixture_blob)
    publish(tmp / "site.snap", tmp / "kv", tmp / "registry")
    try:
        worker = pinned_worker(tmp / "worker")
        stack.processes.append(
            start_wrangler(stack.port, tmp / "kv", stack.variables(), tmp, config=worker)
        )
        yield stack
    finally:
        for process in stack.processes:
            process.stop()
        stack.origin.shutdown()
        stack.collector.stop()


def test_a_personalized_page_streams_while_the_origin_is_still_sending(stack: Stack) -> None:
    # /shop (no page-level slot applies there, so its markup comes from one origin path): the
    # isolate's first view is buffered, and it learns the page's slots; the next one streams
    stack.get("/shop")
    response, first_byte, body = stack.get("/shop")
    html = body.decode()
    assert response.status == 200 and html.endswith("</body></html>")
    # the visitor had the personalized head before the origin had even sent the tail
    assert first_byte < Origin.tail_sent[-1]
    assert len(decision_marks(html)) == 3 and response.getheader("set-cookie")
    assert response.getheader("cache-control") == "private, no-store"
    deadline = time.monotonic() + 20
    shown: set[str] = set()
    while time.monotonic() < deadline and not decision_marks(html) <= shown:
        shown = {e["id"] for e in stack.collector.events() if e["type"] == "exposure"}
        time.sleep(0.2)
    assert decision_marks(html) <= shown  # what the streamed page showed was logged


def test_a_visitor_gone_mid_page_still_has_the_view_logged(stack: Stack) -> None:
    """The origin sends the page's head and stalls; the visitor reads the head and hangs up. The
    document's end never reaches the rewriter, so the page's events wait STREAM_WAIT_S (a JS
    timer of the request's own), then go with the slots met so far."""
    stack.get("/shop")  # the page's slots are learnt (its first view is buffered)
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    connection.request("GET", "/shop?stall", headers={"user-agent": BROWSER})
    response = connection.getresponse()
    head = ""
    while "</div>" not in head:  # the origin's head, as the worker streamed it
        head += response.read1(65536).decode()
    cookie = response.getheader("set-cookie") or ""
    connection.sock.close()  # gone before the tail (TAIL_DELAY s later)
    connection.close()
    assert response.status == 200 and "data-edgepick-decision" in head
    value = cookie.split(";")[0].split("=", 1)[1]
    kid, secret = KEYS.split(":")
    visitor = decode(value, Keyring(kid, {kid: secret.encode()}), VisitorState("")).state
    deadline = time.monotonic() + STREAM_WAIT_S + 15
    mine: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not any(e["type"] == "page_view" for e in mine):
        mine = [e for e in stack.collector.events() if e.get("visitor") == visitor.visitor_id]
        time.sleep(0.5)
    assert [e["type"] for e in mine].count("page_view") == 1, mine
    shown = {e["id"] for e in mine if e["type"] == "exposure"}
    assert decision_marks(head) <= shown  # what the head showed was logged...
    assert "cta" not in {e["slot"] for e in mine if e["type"] == "exposure"}  # ... and no more


def test_a_hanging_origin_gets_a_504_after_the_timeout(stack: Stack) -> None:
    started = time.monotonic()
    response, _arrived, body = stack.get("/hang")
    assert response.status == 504 and b"did not answer within 1 s" in body
    assert time.monotonic() - started < 4.5  # well before the origin would have answered


def test_request_headers_reach_the_origin_and_forged_ones_do_not(stack: Stack) -> None:
    sent = {
        "authorization": "Bearer abc",
        "if-none-match": '"v7"',
        "x-forwarded-for": "203.0.113.9",
        "x-edgepick-evil": "forged",
        "accept": "text/html",
    }
    response, _arrived, body = stack.get("/echo", sent)
    assert response.status == 200 and b"echo" in body
    got = Origin.seen[-1]
    assert got["authorization"] == "Bearer abc" and got["if-none-match"] == '"v7"'
    assert "203.0.113.9" in got["x-forwarded-for"]
    assert "x-edgepick-evil" not in got
    # one hop's headers are not passed on: the origin is asked for itself, not for the edge
    assert got["host"] == f"127.0.0.1:{stack.origin.server_address[1]}"
    # nothing personalized on that page, but it sets a new visitor's cookie: private to them
    assert response.getheader("cache-control") == "private"
    response, _arrived, _body = stack.get("/logo.png", {**sent, "accept": "image/png"})
    assert "x-edgepick-evil" not in Origin.seen[-1]  # untouched requests too
    assert Origin.seen[-1]["authorization"] == "Bearer abc"


def test_a_head_request_reaches_the_origin_as_a_head_and_comes_back_untouched(
    stack: Stack,
) -> None:
    before = len(stack.collector.events())
    response, _arrived, body = stack.get("/shop", {"accept": "text/html"}, method="HEAD")
    assert response.status == 200 and body == b"" and Origin.methods == ["HEAD"]
    assert response.getheader("etag") == '"head-v1"' and not response.getheader("set-cookie")
    time.sleep(1)
    assert len(stack.collector.events()) == before  # a HEAD shows nothing: nothing logged


def test_health_counts_streamed_and_buffered_pages_and_timeouts(stack: Stack) -> None:
    for _ in range(3):  # at most the first is buffered (an earlier test may have seen it)
        stack.get("/shop")
    stack.get("/hang")
    key = {"x-edgepick-health-key": "proxy-health"}
    response, _arrived, body = stack.get("/_edgepick/health", key)
    health = json.loads(body)
    assert response.status == 200 and health["ok"] is True, health
    assert health["pages"]["buffered"] >= 1 and health["pages"]["streamed"] >= 2, health
    assert health["pages"]["mismatches"] == 0 and health["origin_timeouts"] >= 1, health
