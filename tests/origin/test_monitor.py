from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from origin.monitor import MonitorConfig, check, latency_percentiles, report
from origin.store import SqliteStore
from tests.origin.helpers import exposure, outcome

HOUR = 3_600_000
START = 1_790_000_000_000 // HOUR * HOUR
CONFIG = MonitorConfig(window_ms=HOUR, history=6, min_expected=10, budget_us=1000)


def fill(store: SqliteStore, hours: int, exposures: int, clicks: int, last_clicks: int) -> int:
    events: list[dict[str, Any]] = []
    for h in range(hours):
        base = START + h * HOUR
        events += [
            exposure(h * 1000 + i, ts=base + i, decision_us=200 + i % 50) for i in range(exposures)
        ]
        n = last_clicks if h == hours - 1 else clicks
        events += [outcome(f"d{h * 1000 + i}-0", ts=base + i + 1) for i in range(n)]
    for i in range(0, len(events), 500):
        store.append(events[i : i + 500])
    return START + hours * HOUR + 5  # "now": just after the last complete window


def test_click_volume_drop_alerts_exposures_do_not(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "e.db")
    now = fill(store, 7, exposures=40, clicks=20, last_clicks=2)
    alerts = check(store, now, CONFIG)
    assert [(a.kind, a.subject) for a in alerts] == [("volume", "click")]
    assert "dropped: 2" in alerts[0].message and alerts[0].details["expected"] == 20


def test_spike_alerts(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "e.db")
    now = fill(store, 7, exposures=40, clicks=20, last_clicks=90)
    (alert,) = check(store, now, CONFIG)
    assert alert.subject == "click" and "spiked" in alert.message


def test_steady_volume_and_low_latency_are_quiet(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "e.db")
    now = fill(store, 7, exposures=40, clicks=20, last_clicks=19)
    assert check(store, now, CONFIG) == []


def test_latency_percentiles_and_budget_alert(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "e.db")
    store.append(
        [exposure(i, ts=START + i, decision_us=100 if i < 95 else 900) for i in range(100)]
    )
    stats = latency_percentiles(store, START, START + HOUR)
    assert stats["p50"] == 100 and stats["p99"] == pytest.approx(900) and stats["n"] == 100
    alerts = check(store, START + 1000, MonitorConfig(window_ms=HOUR, budget_us=1000, warn=0.8))
    assert [a.kind for a in alerts] == ["latency"] and "90%" in alerts[0].message
    assert check(store, START + 1000, MonitorConfig(window_ms=HOUR, budget_us=2000)) == []


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[Any]] = []

    def do_POST(self) -> None:
        self.received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    finally:
        server.shutdown()
        server.server_close()


def test_alerts_are_logged_and_posted(
    tmp_path: Path, hook: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStore(tmp_path / "e.db")
    now = fill(store, 7, exposures=40, clicks=20, last_clicks=0)
    alerts = check(store, now, CONFIG)
    with caplog.at_level(logging.WARNING, "edgepick.monitor"):
        report(alerts, hook)
        report(alerts, "http://127.0.0.1:1/unreachable")  # logged, never raised
    assert "ALERT volume click" in caplog.text and "alert webhook" in caplog.text
    (posted,) = Hook.received
    assert (
        posted["alerts"][0]["subject"] == "click"
        and posted["alerts"][0]["details"]["observed"] == 0
    )
