"""``edgepick sync`` through the lake: the same learned model as the store's path, round after
round, with late events; profiles of the users late events name are published."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from core.engine import Engine
from core.profile import profile_key
from origin.lake.engines import DuckDBEngine
from origin.lake.rounds import LakeRounds
from origin.lake.segments import DAY_MS, Lake
from origin.registry import Registry
from origin.store import SqliteStore
from origin.sync import SyncJob, run_round
from origin.targets import DirTarget
from tests.conftest import FIXTURES
from tests.origin.helpers import NOW_MS, identify, outcome
from tests.origin.test_sync_cli import simulate


def _job(root: Path, store: SqliteStore, lake: Any, hours: float) -> SyncJob:
    return SyncJob(
        config=FIXTURES / "site.toml",
        store=store,
        registry=Registry(root / "reg"),
        targets=[DirTarget(root / "kv")],
        model=FIXTURES / "model.json",
        clock=lambda: NOW_MS / 1000 + 3600 * hours,
        lake=lake,
    )


def test_rounds_through_the_lake_learn_what_the_store_path_learns(
    tmp_path: Path, engine: Engine
) -> None:
    store = SqliteStore(tmp_path / "events.db")
    simulate(store, engine, 1500, seed=0)
    lake = LakeRounds(Lake(tmp_path / "lake"), DuckDBEngine())
    for n in range(3):
        plain = run_round(_job(tmp_path / "plain", store, None, n + 1))
        laked = run_round(_job(tmp_path / "laked", store, lake, n + 1))
        assert (laked.rows, laked.learnable) == (plain.rows, plain.learnable)
        assert laked.rows > 0 and laked.model == plain.model
        assert laked.snapshot == plain.snapshot  # the same numbers compile to the same blob
        assert [r.variant for r in laked.retired] == [r.variant for r in plain.retired]
        assert lake.lake.summary()["rows"] == len(store.ids())  # every event flushed, once
        # the next round's traffic: new visitors, and late clicks on the first round's decisions
        simulate(store, engine, 500, seed=n + 1)
        early = [e for e in store.exposures() if e["slot"] == "headline"][: 40 * (n + 1)]
        store.append([outcome(e["id"], ts=e["ts"] + 5_000, visitor=e["visitor"]) for e in early])


def test_a_late_identify_reaches_the_published_profile(tmp_path: Path, engine: Engine) -> None:
    store = SqliteStore(tmp_path / "events.db")
    simulate(store, engine, 200, seed=0)
    lake = LakeRounds(Lake(tmp_path / "lake"), DuckDBEngine())
    run_round(_job(tmp_path, store, lake, 1))  # the first round publishes every profile
    kv = tmp_path / "kv"
    key = profile_key("u-late")
    assert not (kv / key).exists()
    # a login from yesterday delivered only now (its ts is before the last round's)
    store.append([identify("sim-0-7", "u-late", ts=NOW_MS - DAY_MS)])
    result = run_round(_job(tmp_path, store, lake, 2))
    assert result.profiles == 1 and (kv / key).exists()


def test_sync_takes_the_lake_from_the_environment(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "events.db")
    simulate(store, engine, 100)
    monkeypatch.setenv("EDGEPICK_LAKE", str(tmp_path / "lake"))
    job = SyncJob(FIXTURES / "site.toml", store, Registry(tmp_path / "reg"), [])
    assert isinstance(job.lake, LakeRounds) and job.lake.engine.name == "duckdb"
    code = main(
        [
            "sync",
            str(FIXTURES / "site.toml"),
            "--store",
            str(store.path),
            "--registry",
            str(tmp_path / "reg"),
            "--target",
            f"dir:{tmp_path / 'kv'}",
            "--once",
        ]
    )
    assert code == 0
    assert Lake(tmp_path / "lake").summary()["rows"] == len(store.ids())
    monkeypatch.setenv("EDGEPICK_LAKE_ENGINE", "hadoop")
    with pytest.raises(ValueError, match="'hadoop' is not one of duckdb, spark"):
        SyncJob(FIXTURES / "site.toml", store, Registry(tmp_path / "reg"), [])
