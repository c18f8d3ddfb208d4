"""The site loop fills a store and registry; evaluate and report read them; Chromium renders it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from origin.evaluate import evaluate_store
from origin.registry import Registry
from origin.report import wilson, write
from origin.simulate import LoopConfig, populate
from origin.store import SqliteStore

CHROMIUM = "/usr/bin/chromium"
SECTIONS = (
    "Variant performance",
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
    return store, registry, results


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
        pytest.skip(f"Debian's chromium is not installed ({CHROMIUM}): apt-get install chromium")
    store, registry, _ = loop
    out = tmp_path / "report.html"
    report = write(store, registry, out, resamples=200)
    assert tuple(report.headings) == SECTIONS
    # 6 slots of performance, 4 allocations, 2 posteriors, latency, volume, 6 OPE plots
    assert report.figures >= 15
    dom = _chromium("--dump-dom", out.as_uri(), profile=tmp_path / "profile").stdout.decode()
    images = re.findall(r'<img[^>]+src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', dom)
    assert len(images) == report.figures
    for heading in SECTIONS:
        assert f"<h2>{heading}</h2>" in dom
    assert "click-through" in dom and "<table>" in dom
    shot = tmp_path / "shot.png"
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
