"""The lake's aggregation: equal to the store's training rows summed in Python, the same on
DuckDB and Spark SQL, and incremental rounds equal to a recomputation from scratch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from origin.aggregates import Aggregates, Summer
from origin.lake import spark_job
from origin.lake.engines import DuckDBEngine, SparkEngine
from origin.lake.flush import flush
from origin.lake.rounds import LakeRounds, RoundAggregates, dirty_span
from origin.lake.segments import DAY_MS, HOUR_MS, Lake
from origin.lake.sql import Query, aggregation_sql, widths_rows
from origin.store import SqliteStore
from origin.training import Reward, Windows, training_rows
from tests.conftest import FIXTURES
from tests.origin.helpers import exposure, outcome
from tests.origin.lake.conftest import START_MS, fill

REWARD = Reward(click=1.0, conversion=2.0, value=0.01)  # every outcome kind weighs


def python_path(
    store: SqliteStore, widths: dict[str, int], reward: Reward
) -> tuple[Aggregates, Aggregates, int, int]:
    everything, learnable = Summer(widths, learnable_only=False), Summer(widths)
    rows = draws = 0
    for row in training_rows(store, Windows(), reward):
        rows += 1
        draws += row.learnable
        everything.add(row)
        learnable.add(row)
    return learnable.result(), everything.result(), rows, draws


def assert_same(lake: RoundAggregates, python: tuple[Aggregates, Aggregates, int, int]) -> None:
    learnable, everything, rows, draws = python
    assert (lake.rows, lake.learnable_rows) == (rows, draws)
    for mine, theirs in ((lake.learnable, learnable), (lake.everything, everything)):
        assert set(mine.arms) == set(theirs.arms)
        for key, stats in theirs.arms.items():
            assert mine.arms[key].close_to(stats), key


def test_duckdb_round_equals_the_stores_training_rows(
    store: SqliteStore, tmp_path: Path, slot_widths: dict[str, int]
) -> None:
    python = python_path(store, slot_widths, REWARD)
    learnable, _, _, draws = python
    # the traffic exercises what the SQL must get right
    assert draws < sum(1 for e in store.exposures() if e["reason"] in ("policy", "fallback"))
    assert any("@" in slot for slot, _ in learnable.arms)  # the headline's mobile segment
    assert any(s.m and s.width > 5 for s in learnable.arms.values())  # linear slots
    assert any(s.reward > s.successes for s in learnable.arms.values())  # conversion values
    rounds = LakeRounds(Lake(tmp_path / "lake"), DuckDBEngine())
    result = rounds.round(slot_widths, Windows(), REWARD, store_path=store.path)
    assert_same(result, python)


def test_spark_and_duckdb_give_identical_aggregates(
    store: SqliteStore, tmp_path: Path, slot_widths: dict[str, int], capsys: Any
) -> None:
    lake = Lake(tmp_path / "lake")
    flush(store.path, lake)
    hours = [s.hour for s in lake.manifest().segments]
    sql = aggregation_sql(
        Query(min(hours), max(hours) + HOUR_MS, Windows(), REWARD, max(slot_widths.values()))
    )
    duck = DuckDBEngine().run(sql, lake.files(), widths_rows(slot_widths))
    spark = SparkEngine(master="local[2]")
    theirs = spark.run(sql, lake.files(), widths_rows(slot_widths))
    assert len(duck) > 100 and len(duck) == len(theirs)
    for mine, other in zip(duck, theirs, strict=True):
        assert mine.keys() == other.keys()
        for column, value in mine.items():
            if isinstance(value, float):
                assert abs(value - other[column]) <= 1e-9 * max(1.0, abs(value)), column
            else:
                assert value == other[column], column

    # the spark-submit job (on the session above) leaves the state a DuckDB round continues
    args = ["--lake", str(lake.root), "--config", str(FIXTURES / "site.toml"), "--master", ""]
    assert spark_job.main([*args, "--reward", "click=1,conversion=2,value=0.01"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    python = python_path(store, slot_widths, REWARD)
    assert summary["rows"] == python[2] and summary["recomputed"] is not None
    later = LakeRounds(lake, DuckDBEngine()).round(slot_widths, Windows(), REWARD)
    assert later.recomputed is None  # nothing new since the Spark round: its state is used
    assert_same(later, python)


def test_dirty_span_follows_the_new_events_and_the_weighted_windows() -> None:
    t = START_MS - START_MS % DAY_MS + 10 * HOUR_MS + 5  # 10:00 and a bit, UTC
    kinds = np.array(["click"])
    span = dirty_span(kinds, np.array([t]), Windows(), Reward())
    assert span == (t - t % HOUR_MS - HOUR_MS, t - t % HOUR_MS + HOUR_MS)  # 30 min back
    assert dirty_span(np.array(["conversion"]), np.array([t]), Windows(), Reward()) is None
    span = dirty_span(np.array(["conversion"]), np.array([t]), Windows(), REWARD)
    assert span is not None and span[0] == t - t % HOUR_MS - 24 * HOUR_MS
    span = dirty_span(np.array(["exposure"]), np.array([t]), Windows(), Reward())
    assert span == (t - t % HOUR_MS, t - t % DAY_MS + DAY_MS)  # the rest of its day
    assert dirty_span(np.array(["page_view"]), np.array([t]), Windows(), REWARD) is None


def _batches(traffic: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The traffic in 5 rounds, each spanning the whole time range: most events arrive late."""
    ordered = sorted(traffic, key=lambda e: e["ts"])
    return [ordered[i::5] for i in range(5)]


def test_incremental_rounds_equal_a_recomputation_and_the_python_path(
    tmp_path: Path, traffic: list[dict[str, Any]], slot_widths: dict[str, int]
) -> None:
    store = SqliteStore(tmp_path / "events.db")
    rounds = LakeRounds(Lake(tmp_path / "lake"), DuckDBEngine())
    for part in _batches(traffic):
        fill(store, part)
        result = rounds.round(slot_widths, Windows(), REWARD, store_path=store.path)
    assert_same(result, python_path(store, slot_widths, REWARD))

    # a late click and a late policy draw for the first day: only their hours are recomputed
    late_ts = START_MS + 3 * HOUR_MS
    later = [e for e in traffic if e["type"] == "exposure" and e["ts"] >= late_ts]
    first = min(later, key=lambda e: e["ts"])
    store.append([outcome(first["id"], ts=first["ts"] + 60_000, visitor=first["visitor"])])
    store.append([exposure(1, slot="promo", variant="promo-none", ts=late_ts, visitor="late")])
    result = rounds.round(slot_widths, Windows(), REWARD, store_path=store.path)
    lo, hi = result.recomputed or (0, 0)
    assert lo <= late_ts < hi and hi <= late_ts - late_ts % DAY_MS + DAY_MS
    assert_same(result, python_path(store, slot_widths, REWARD))
    scratch = LakeRounds(Lake(tmp_path / "lake"), DuckDBEngine(), state_dir=tmp_path / "fresh")
    assert_same(
        scratch.round(slot_widths, Windows(), REWARD), python_path(store, slot_widths, REWARD)
    )

    # nothing new: nothing recomputed, the same sums
    again = rounds.round(slot_widths, Windows(), REWARD, store_path=store.path)
    assert again.recomputed is None and again.files_read == 0
    assert_same(again, python_path(store, slot_widths, REWARD))


def test_a_changed_reward_recomputes_everything(
    store: SqliteStore, tmp_path: Path, slot_widths: dict[str, int]
) -> None:
    rounds = LakeRounds(Lake(tmp_path / "lake"), DuckDBEngine())
    rounds.round(slot_widths, Windows(), REWARD, store_path=store.path)
    clicks = rounds.round(slot_widths, Windows(), Reward(), store_path=store.path)
    assert clicks.recomputed is not None
    assert_same(clicks, python_path(store, slot_widths, Reward()))


def test_an_empty_lake_gives_empty_aggregates(tmp_path: Path, slot_widths: dict[str, int]) -> None:
    store = SqliteStore(tmp_path / "events.db")
    result = LakeRounds(Lake(tmp_path / "lake"), DuckDBEngine()).round(
        slot_widths, Windows(), Reward(), store_path=store.path
    )
    assert (result.rows, result.learnable.arms, result.everything.arms) == (0, {}, {})
