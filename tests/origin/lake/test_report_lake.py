"""``edgepick report`` from the lake's aggregates equals the report from the store's raw events."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli.main import main
from origin.lake.report import REPORT_STATE, lake_facts
from origin.lake.rounds import STATE_DIR
from origin.lake.segments import Lake
from origin.registry import Registry
from origin.report import Facts, Moments, build, store_facts
from origin.simulate import LoopConfig, populate
from origin.store import SqliteStore
from tests.origin.test_report import add_vitals


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteStore, Registry]:
    root = tmp_path_factory.mktemp("loop")
    store, registry = SqliteStore(root / "events.db"), Registry(root / "registry")
    populate(store, registry, LoopConfig(hours=26, visitors=40, outage_hour=None))
    if store.count("vitals") == 0:
        add_vitals(store)
    return store, registry


def _close(a: Moments, b: Moments) -> None:
    assert a.n == b.n
    assert a.total == pytest.approx(b.total, rel=1e-9, abs=1e-9)
    assert a.squares == pytest.approx(b.squares, rel=1e-9, abs=1e-9)


def assert_same_facts(lake: Facts, store: Facts) -> None:
    assert sorted(lake.cells) == sorted(store.cells)
    for key, cell in store.cells.items():
        other = lake.cells[key]
        for name in ("clicks", "converted", "revenue"):
            _close(getattr(other, name), getattr(cell, name))
    assert sorted(lake.arms) == sorted(store.arms)
    for arm_key, arm in store.arms.items():
        got = lake.arms[arm_key]
        assert (got.n, got.clicked, got.converted, got.draws) == (
            arm.n,
            arm.clicked,
            arm.converted,
            arm.draws,
        ), arm_key
        assert got.successes == pytest.approx(arm.successes, abs=1e-9)
        _close(got.revenue, arm.revenue)
    assert np.array_equal(np.sort(lake.latency), np.sort(store.latency))
    assert lake.volume == store.volume
    assert (lake.first_ms, lake.last_ms) == (store.first_ms, store.last_ms)
    for kind in ("exposure", "click", "conversion"):
        assert lake.counts.get(kind, 0) == store.counts[kind]


def _tables(html: str) -> str:
    """The page without its images (PNG bytes may differ in the last float bit)."""
    return re.sub(r'src="data:image/png;base64,[^"]+"', "", html)


def test_the_lake_report_equals_the_store_report(
    loop: tuple[SqliteStore, Registry], tmp_path: Path
) -> None:
    store, registry = loop
    lake = Lake(tmp_path / "lake")
    from_store = store_facts(store, registry)
    from_lake = lake_facts(lake, registry, store_path=store.path)
    assert from_store.cells and from_store.arms and from_store.latency.size
    assert len({k.channel for k in from_store.cells}) >= 4  # newsletter, search, social, ...
    assert any(k.holdout for k in from_store.cells)
    assert any(a.converted for a in from_store.arms.values())
    assert_same_facts(from_lake, from_store)
    kwargs: dict[str, Any] = {"resamples": 50}
    page = build(store, registry, facts=from_store, **kwargs)
    lake_page = build(store, registry, facts=from_lake, ope_days=7, **kwargs)
    assert lake_page.headings == page.headings and lake_page.figures == page.figures
    for ours, theirs in zip(lake_page.sections, page.sections, strict=True):
        assert _tables(ours) == _tables(theirs)
    # the report keeps its own round state; a second report reads it, recomputing nothing new
    assert (lake.root / STATE_DIR / REPORT_STATE / "windows.parquet").exists()
    again = lake_facts(lake, registry, store_path=store.path)
    assert_same_facts(again, from_store)


def test_report_cli_reads_the_lake(
    loop: tuple[SqliteStore, Registry],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, registry = loop
    out = tmp_path / "r.html"
    args = ["--store", str(store.path), "--registry", str(registry.root), "--resamples", "50"]
    monkeypatch.setenv("EDGEPICK_LAKE", str(tmp_path / "lake"))
    assert main(["report", *args, "-o", str(out)]) == 0
    assert "from the lake" in capsys.readouterr().out
    page = out.read_text()
    assert "from the event lake" in page and "<h2>Variant performance</h2>" in page
    assert Lake(tmp_path / "lake").summary()["rows"] == sum(
        store.count(k) for k in ("exposure", "click", "conversion")
    ) + store.count("page_view") + store.count("vitals") + store.count("identify")
