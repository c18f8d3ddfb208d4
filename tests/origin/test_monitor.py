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


# ---- real-user vitals ----

VITALS_CONFIG = MonitorConfig(window_ms=HOUR, history=6, vitals_window_ms=HOUR, vitals_min_pages=5)


def pages(
    store: SqliteStore,
    n: int,
    first: int,
    reason: str,
    variant: str,
    lcp: float,
    inp: float,
    cls: float,
) -> None:
    """``n`` page loads, each a visitor with a hero exposure and the page's vitals."""
    batch: list[dict[str, Any]] = []
    for i in range(first, first + n):
        visitor, ts = f"v{i}", START + i * 10
        batch.append(exposure(i, "hero", variant, visitor=visitor, ts=ts, reason=reason))
        batch.append(
            {
                "type": "vitals",
                "id": f"{visitor}:vitals:p{i}",
                "ts": ts + 5,
                "visitor": visitor,
                "path": "/",
                "decisions": [f"d{i}-0"],
                "lcp": lcp + i % 5,  # a small spread
                "inp": inp,
                "cls": cls,
                "ttfb": 80.0,
            }
        )
    store.append(batch)


def test_vitals_p75_per_slot_arm_and_holdout(tmp_path: Path) -> None:
    from origin.monitor import vitals_p75

    store = SqliteStore(tmp_path / "e.db")
    pages(store, 8, 0, "policy", "hero-a", lcp=1000.0, inp=50.0, cls=0.01)
    pages(store, 4, 100, "holdout", "hero-brand", lcp=900.0, inp=40.0, cls=0.0)
    rows = {
        (r.slot, r.variant, r.holdout, r.metric): r for r in vitals_p75(store, START, START + HOUR)
    }
    hero = rows[("hero", "hero-a", False, "lcp")]
    # 1000, 1000, 1001, 1001, 1002, 1002, 1003, 1004: numpy's linear p75 is 1002.25
    assert hero.pages == 8 and hero.p75 == pytest.approx(1002.25)
    assert rows[("hero", "hero-brand", True, "inp")].p75 == 40.0
    assert rows[("", "personalized", False, "cls")].pages == 8
    assert rows[("", "holdout", True, "lcp")].pages == 4


def test_vitals_near_good_thresholds_alert(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "e.db")
    pages(store, 6, 0, "policy", "hero-a", lcp=2200.0, inp=50.0, cls=0.12)
    alerts = [a for a in check(store, START + HOUR, VITALS_CONFIG) if a.kind == "vitals"]
    subjects = sorted(a.subject for a in alerts)
    assert subjects == [
        "cls hero/hero-a",
        "cls personalized pages",
        "lcp hero/hero-a",
        "lcp personalized pages",
    ]
    lcp = next(a for a in alerts if a.subject == "lcp hero/hero-a")
    assert (
        "LCP p75 2203 ms for hero/hero-a is at 88% of the 'good' threshold 2500 ms" in lcp.message
    )


def test_personalized_pages_slower_than_holdout_alert(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "e.db")
    pages(store, 6, 0, "policy", "hero-a", lcp=1500.0, inp=60.0, cls=0.0)
    pages(store, 6, 100, "holdout", "hero-brand", lcp=1000.0, inp=58.0, cls=0.0)
    alerts = [a for a in check(store, START + HOUR, VITALS_CONFIG) if a.kind == "vitals"]
    (alert,) = alerts  # LCP only: INP's 2 ms gap is noise, nothing near a threshold
    assert alert.subject == "lcp personalized vs holdout"
    assert alert.details["personalized"] > 1.1 * alert.details["holdout"]
    assert "slower than holdout pages" in alert.message


def test_too_few_pages_are_not_judged(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "e.db")
    pages(store, 4, 0, "policy", "hero-a", lcp=9000.0, inp=900.0, cls=0.5)
    assert [a for a in check(store, START + HOUR, VITALS_CONFIG) if a.kind == "vitals"] == []
