"""End to end through ``wrangler dev``: real workerd, real local KV written by ``edgepick publish``,
a real origin and a real collector on 127.0.0.1, real HTTP between them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.devstack import (
    ROOT,
    WRANGLER,
    Process,
    free_port,
    pinned_worker,
    start_store,
    start_wrangler,
)
from core import events
from core.cookie import Keyring
from core.features import VisitorState
from core.snapshot import decode_header
from tests.edge.helpers import Collector, cookie_state, decision_marks

pytestmark = pytest.mark.skipif(not WRANGLER.exists(), reason="run `make setup` (npm ci) first")

KEYS = "k1:e2e-cookie-secret"
HEALTH = {"x-edgepick-health-key": "wrangler-health"}
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
EDGEPICK = [sys.executable, "-m", "cli.main"]


def publish(snapshot: Path, persist: Path, registry: Path) -> str:
    done = subprocess.run(
        [
            *EDGEPICK,
            "publish",
            str(snapshot),
            "--target",
            f"wrangler:{persist}",
            "--registry",
            str(registry),
            "--message",
            "e2e",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return decode_header(snapshot.read_bytes())[0].id


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.collector = Collector(b"e2e-events")
        self.origin_port = free_port()
        self.port = free_port()
        self.persist = tmp / "kv"
        self.registry = tmp / "registry"
        self.processes: list[Process] = []
        self.snapshot_id = ""

    def variables(self) -> dict[str, str]:
        return {
            "ORIGIN_URL": f"http://127.0.0.1:{self.origin_port}",
            "COLLECTOR_URL": f"http://127.0.0.1:{self.collector.port}/v1/events",
            "EVENTS_SECRET": "e2e-events",
            "COOKIE_KEYS": KEYS,
            "HEALTH_KEY": "wrangler-health",
            "SNAPSHOT_TTL_SECONDS": "0",
        }

    def get(
        self, path: str, cookie_value: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            headers={"user-agent": BROWSER, **(headers or {})},
        )
        if cookie_value is not None:
            request.add_header("cookie", f"ep={cookie_value}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return (
                    response.status,
                    {k.lower(): v for k, v in response.headers.items()},
                    response.read(),
                )
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fixture_blob: bytes) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("e2e")
    stack = Stack(tmp)
    (tmp / "site.snap").write_bytes(fixture_blob)
    stack.snapshot_id = publish(tmp / "site.snap", stack.persist, stack.registry)
    try:
        stack.processes.append(start_store(stack.origin_port, tmp))
        worker = pinned_worker(tmp / "worker")  # this moment's code, whatever changes meanwhile
        stack.processes.append(
            start_wrangler(stack.port, stack.persist, stack.variables(), tmp, config=worker)
        )
        yield stack
    finally:
        for process in stack.processes:
            process.stop()
        stack.collector.stop()


def set_cookie(headers: dict[str, str]) -> str:
    return headers["set-cookie"].split(";")[0].split("=", 1)[1]


def state_of(value: str) -> VisitorState:
    return cookie_state(value, Keyring("k1", {"k1": b"e2e-cookie-secret"}))


def test_personalized_html_and_cookie(stack: Stack) -> None:
    status, headers, body = stack.get("/")
    html = body.decode()
    assert status == 200
    assert html.count("data-edgepick-decision=") == 4, html
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=Lax" in headers["set-cookie"]
    # workerd freezes clocks while the worker computes: no duration rather than a fake 0
    assert headers["server-timing"] == 'edgepick;desc="decide (duration not measurable here)"'
    state = state_of(set_cookie(headers))
    assert state.page_views == 1 and len(state.decisions) == 5


def test_cookie_honoured_on_the_next_request(stack: Stack) -> None:
    _, headers, first = stack.get("/")
    value = set_cookie(headers)
    _, headers2, second = stack.get("/c/running", value)
    state = state_of(set_cookie(headers2))
    assert state.visitor_id == state_of(value).visitor_id
    assert state.page_views == 2 and dict(state.affinity).get("running") == 1.0
    assert decision_marks(second.decode()) <= decision_marks(
        first.decode()
    )  # the session's decisions are reused


@pytest.mark.parametrize("kind", ["tampered", "truncated", "oversized"])
def test_bad_cookies_are_ignored(stack: Stack, kind: str) -> None:
    _, headers, _ = stack.get("/")
    good = set_cookie(headers)
    bad = {
        "tampered": good[:20] + ("A" if good[20] != "A" else "B") + good[21:],
        "truncated": good[: len(good) // 2],
        "oversized": "v1." + "x" * 4200,
    }[kind]
    status, headers, body = stack.get("/", bad)
    assert status == 200 and body.decode().count("data-edgepick-decision=") == 4
    fresh = state_of(set_cookie(headers))
    assert fresh.visitor_id != state_of(good).visitor_id and fresh.page_views == 1


def test_exposures_reach_the_collector(stack: Stack) -> None:
    _, headers, _ = stack.get("/", headers={"user-agent": "Mozilla/5.0 (iPhone) Mobile"})
    visitor = state_of(set_cookie(headers)).visitor_id
    deadline = time.monotonic() + 20
    mine: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(mine) < 5:
        mine = [
            e
            for e in stack.collector.events()
            if e.get("visitor") == visitor and e["type"] == events.EXPOSURE
        ]
        time.sleep(0.2)
    assert {e["slot"] for e in mine} == {"landing", "headline", "promo", "hero", "cta"}
    assert all(events.problem(e) is None and e["device"] == "mobile" for e in mine)


def test_decide_api_and_health(stack: Stack) -> None:
    status, _, body = stack.get("/_edgepick/decide?slots=recs&path=/")
    assert status == 200 and json.loads(body)["decisions"][0]["slot"] == "recs"
    health = json.loads(stack.get("/_edgepick/health", headers=HEALTH)[2])
    assert health["ok"] and health["snapshot"] == stack.snapshot_id
    assert stack.get("/_edgepick/client.js")[1]["content-type"].startswith("application/javascript")


def test_rollback_serves_the_earlier_snapshot(stack: Stack, fixture_blob: bytes) -> None:
    from compile.site import compile_site, load_toml
    from core.snapshot import encode_snapshot
    from tests.conftest import FIXTURES

    config = load_toml(FIXTURES / "site.toml")
    config["slots"]["headline"]["variants"][0]["content"] = "Version two headline"
    v2 = stack.tmp / "v2.snap"
    v2.write_bytes(encode_snapshot(compile_site(config), parent=stack.snapshot_id))
    second = publish(v2, stack.persist, stack.registry)
    assert _eventually(
        lambda: json.loads(stack.get("/_edgepick/health", headers=HEALTH)[2])["snapshot"] == second
    )
    done = subprocess.run(
        [
            *EDGEPICK,
            "rollback",
            stack.snapshot_id,
            "--registry",
            str(stack.registry),
            "--target",
            f"wrangler:{stack.persist}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert _eventually(
        lambda: (
            json.loads(stack.get("/_edgepick/health", headers=HEALTH)[2])["snapshot"]
            == stack.snapshot_id
        )
    )


def _eventually(check: Any, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def test_empty_kv_serves_the_origin_page_byte_for_byte(stack: Stack, tmp_path: Path) -> None:
    port = free_port()
    empty = Stack(tmp_path)
    empty.port, empty.origin_port = port, stack.origin_port
    worker = pinned_worker(tmp_path / "worker")
    process = start_wrangler(
        port, tmp_path / "empty-kv", empty.variables(), tmp_path, config=worker
    )
    try:
        status, headers, body = empty.get("/")
        expected = (ROOT / "fixtures" / "pages" / "index.html").read_bytes()
        assert status == 200 and body == expected
        assert "set-cookie" not in headers
        assert json.loads(empty.get("/_edgepick/health", headers=HEALTH)[2])["ok"] is False
    finally:
        process.stop()
