"""The site loop fills a store and registry; evaluate and report read them; Chromium renders it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli.main import main
from core.events import beacon_vitals
from origin.evaluate import evaluate_store
from origin.registry import Registry
from origin.report import mean_interval, relative_lift, visitors, wilson, write
from origin.simulate import LoopConfig, populate
from origin.store import SqliteStore

CHROMIUM = "/usr/bin/chromium"
SECTIONS = (
    "Personalization lift",
    "Variant performance",
    "Audiences and channels",
    "Core Web Vitals",
    "Allocation over time",
    "Posterior curves",
    "Edge decision latency",
    "Event volume and alerts",
    "Off-policy evaluation",
)


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteStore, Registry, list[Any]]:
    root = tmp_path_factory.mktemp("loop")
    store, registry = SqliteStore(root / "events.db"), Registry(root / "registry")
    results = populate(store, registry, LoopConfig(hours=26, visitors=40, outage_hour=None))
    if store.count("vitals") == 0:
        add_vitals(store)
    return store, registry, results


def add_vitals(store: SqliteStore, seed: int = 0) -> int:
    """Each page the loop served reports its vitals as the edge's beacon turns them into an
    event (``core.events.beacon_vitals``) naming the decisions it showed: lognormal LCP around
    1.3 s (personalized pages 150 ms slower), INP, CLS and TTFB."""
    rng = np.random.default_rng(seed)
    pages: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for e in store.exposures():
        pages.setdefault((e["visitor"], e["ts"]), []).append(e)
    batch: list[dict[str, Any]] = []
    for n, ((visitor, ts), shown) in enumerate(sorted(pages.items())):
        held = all(e["reason"] == "holdout" for e in shown)
        item = {
            "type": "vitals",
            "id": f"p{n}",
            "path": shown[0]["path"] or "/",
            "decisions": [e["id"] for e in shown],
            "lcp": float(rng.lognormal(np.log(1250.0 if held else 1400.0), 0.3)),
            "inp": float(rng.lognormal(np.log(90.0), 0.5)),
            "cls": float(rng.uniform(0.0, 0.08)),
            "ttfb": float(rng.lognormal(np.log(180.0), 0.3)),
        }
        event, why = beacon_vitals(item, 0, visitor, ts + 3000, frozenset(e["id"] for e in shown))
        assert event is not None, why
        batch.append(event)
    store.append(batch)
    return len(batch)


def test_the_site_loop_learns_and_publishes(loop: tuple[SqliteStore, Registry, list[Any]]) -> None:
    store, registry, results = loop
    assert len(results) == 26 and all(r.rows > 0 for r in results)
    assert len(registry.ids()) > 10  # a new snapshot most hours
    assert store.count("exposure") > 26 * 40 and store.count("click") > 0


def test_evaluate_reconstructs_every_row_and_checks_itself(
    loop: tuple[SqliteStore, Registry, list[Any]],
) -> None:
    store, registry, _ = loop
    results = evaluate_store(store, registry, resamples=200)
    assert {r.slot for r in results} >= {"hero", "headline", "promo", "recs"}
    for res in results:
        assert res.dropped == 0, res.slot  # eligible sets replayed for every policy draw
        assert res.on_policy is not None
        logging = res.estimates["logging"]["ips"]
        assert logging.value == pytest.approx(res.on_policy.value, abs=1e-12)
        assert set(res.estimates) == {"logging", "uniform", "current", "greedy"}


def test_relative_lift_interval_covers_the_true_lift() -> None:
    """The delta method's 95% interval for personalized / holdout - 1 on a 5% holdout: it
    covers the true lift (0.12 / 0.08 - 1 = 0.5) in about 95% of 400 repeats."""
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(400):
        treated = (rng.random(3800) < 0.12).astype(float)
        control = (rng.random(200) < 0.08).astype(float)
        lift = relative_lift(treated, control)
        assert lift.low is not None and lift.high is not None
        covered += lift.low <= 0.5 <= lift.high
    assert 0.91 <= covered / 400 <= 0.98
    assert relative_lift(np.ones(5), np.zeros(5)).lift is None  # no control outcomes: n/a
    few = relative_lift(np.asarray([1.0, 0.0] * 50), np.asarray([1.0] + [0.0] * 49))
    assert few.low is not None and few.low > -1.0  # a ratio's interval stays above -100%


def test_mean_interval() -> None:
    mean, low, high = mean_interval(np.asarray([0.0, 0.0, 10.0, 30.0]), floor=None)
    # s = sqrt(((10^2 + 10^2 + 0 + 20^2) / 3)) = 14.14; half-width 1.96 * 14.14 / 2 = 13.86
    assert mean == 10.0 and high - mean == pytest.approx(13.859, abs=1e-3) and low < 0
    assert mean_interval(np.asarray([0.0, 0.0, 10.0, 30.0]))[1] == 0.0  # revenue: floor 0


def test_visitors_holdout_and_channels(loop: tuple[SqliteStore, Registry, list[Any]]) -> None:
    store, registry, _ = loop
    people = visitors(store, registry)
    held = [v for v in people.values() if v.holdout]
    assert 0.02 < len(held) / len(people) < 0.09  # the fixture site's 5% holdout
    channels = {v.channel for v in people.values()}
    assert channels >= {"newsletter", "search", "social", "direct/other"}
    newsletter = sum(v.channel == "newsletter" for v in people.values()) / len(people)
    assert 0.08 < newsletter < 0.25  # the population's 15%
    assert sum(v.clicks for v in people.values()) == store.count("click")


def test_wilson_interval() -> None:
    low, high = wilson(10, 100)
    assert low == pytest.approx(0.0552, abs=1e-3) and high == pytest.approx(0.1744, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[bytes]:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, timeout=120, check=True)


def test_report_renders_in_headless_chromium(
    loop: tuple[SqliteStore, Registry, list[Any]], tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(f"Debian's chromium is not installed ({CHROMIUM}): run `make setup`")
    store, registry, _ = loop
    out = tmp_path / "report.html"
    report = write(store, registry, out, resamples=200)
    assert tuple(report.headings) == SECTIONS
    # lift, 6 slots of performance, audiences, vitals, 4 allocations, 2 posteriors, latency,
    # volume, 6 OPE plots
    assert report.figures >= 18
    dom = _chromium("--dump-dom", out.as_uri(), profile=tmp_path / "profile").stdout.decode()
    images = re.findall(r'<img[^>]+src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', dom)
    assert len(images) == report.figures
    for heading in SECTIONS:
        assert f"<h2>{heading}</h2>" in dom
    assert "click-through" in dom and "<table>" in dom
    for column in ("conversion rate [95% Wilson]", "revenue / exposure [95%]", "lift [95%]"):
        assert f"<th>{column}</th>" in dom
    assert (
        "<td>channel</td><td>newsletter</td>" in dom and "<td>audience</td><td>mobile</td>" in dom
    )
    assert "<th>LCP ms</th>" in dom and "<td>personalized pages</td>" in dom
    alerts = re.search(r'id="event-volume-and-alerts".*?</section>', dom, re.S)
    assert alerts is not None
    subjects = re.findall(
        r"<tr><td>[^<]*</td><td>[^<]*</td><td>\d+</td><td>\d+</td><td>(\w+)</td><td>([^<]*)</td>",
        alerts.group(0),
    )
    assert len(subjects) == len(set(subjects))  # each alert listed once
    shot = tmp_path / "shot.png"  # (to look at it: write() the report and screenshot it)
    _chromium(
        "--window-size=1200,3000", f"--screenshot={shot}", out.as_uri(), profile=tmp_path / "p2"
    )
    assert shot.read_bytes()[:4] == b"\x89PNG"
    assert shot.stat().st_size > 100_000  # plots, not a blank page


def test_cli_report_and_evaluate(
    loop: tuple[SqliteStore, Registry, list[Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, registry, _ = loop
    out = tmp_path / "r.html"
    args = ["--store", str(store.path), "--registry", str(registry.root)]
    assert main(["report", *args, "-o", str(out), "--resamples", "100"]) == 0
    assert out.exists() and "plots" in capsys.readouterr().out
    data = tmp_path / "ope.json"
    code = main(["evaluate", *args, "--slot", "hero", "--resamples", "100", "--json", str(data)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "== hero" in printed and "snips" in printed and data.exists()
    assert main(["evaluate", "--store", str(tmp_path / "none.db")]) == 1
