"""Operator decisions hold: a rollback, pin, pause or unretire survives sync rounds until the
operator lifts it (``edgepick resume``), is in the audit log and shown by ``history``; a failing
round is retried and the loop goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from core.engine import Engine
from core.model import Lifecycle, ThompsonPolicy
from core.snapshot import decode_snapshot
from origin.publish import CURRENT_KEY
from origin.registry import Registry
from origin.store import SqliteStore
from origin.sync import SyncJob, run_loop, run_round
from origin.targets import DirTarget, TargetError
from tests.conftest import FIXTURES
from tests.origin.helpers import NOW_MS
from tests.origin.test_sync_cli import TRUTH, simulate


@pytest.fixture
def job(tmp_path: Path, engine: Engine) -> SyncJob:
    store = SqliteStore(tmp_path / "events.db")
    simulate(store, engine, 2000)
    return SyncJob(
        config=FIXTURES / "site.toml",
        store=store,
        registry=Registry(tmp_path / "reg"),
        targets=[DirTarget(tmp_path / "kv")],
        model=FIXTURES / "model.json",
        clock=lambda: NOW_MS / 1000 + 3600,
    )


def _cli(tmp_path: Path, *args: str) -> int:
    author = [] if args[0] == "history" else ["--author", "ops"]
    return main([*args, "--registry", str(tmp_path / "reg"), *author])


def _headline(blob: bytes) -> dict[str, float]:
    slot = next(s for s in decode_snapshot(blob).site.slots if s.name == "headline")
    assert isinstance(slot.policy, ThompsonPolicy)
    return dict(zip([v.id for v in slot.variants], slot.policy.weights, strict=True))


def test_a_rollback_holds_until_resume(
    job: SyncJob, tmp_path: Path, engine: Engine, capsys: Any
) -> None:
    first = run_round(job)
    simulate(job.store, engine, 2000, seed=1)  # new traffic: the next round learns more
    second = run_round(job)
    assert second.published and second.snapshot != first.snapshot
    kv = tmp_path / "kv"
    assert _cli(tmp_path, "rollback", first.snapshot, "--target", f"dir:{kv}") == 0
    simulate(job.store, engine, 2000, seed=2)
    held = run_round(job)
    assert not held.published and "pinned to " + first.snapshot in held.held
    assert DirTarget(kv).get(CURRENT_KEY) == first.snapshot.encode()
    assert job.registry.current() == first.snapshot
    capsys.readouterr()
    assert _cli(tmp_path, "history") == 0
    assert f"hold: pinned to {first.snapshot} by ops" in capsys.readouterr().out
    assert _cli(tmp_path, "resume") == 0
    assert "lifted the pin" in capsys.readouterr().out
    after = run_round(job)
    assert after.published and job.registry.current() == after.snapshot != first.snapshot
    actions = [e["action"] for e in job.registry.audit_log()]
    assert actions[-4:] == ["rollback", "pin", "resume", "publish"]


def test_a_paused_slot_keeps_its_numbers_while_others_learn(
    job: SyncJob, tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_round(job)
    before = _headline(job.registry.get(first.snapshot))
    assert _cli(tmp_path, "pause", "headline", "--reason", "campaign week") == 0
    monkeypatch.setitem(TRUTH, "hl-classic", 0.4)  # the classic headline now wins clearly
    simulate(job.store, engine, 4000, seed=3)
    paused = run_round(job)
    assert paused.published  # the other slots learned
    assert _headline(job.registry.get(paused.snapshot)) == before
    assert _cli(tmp_path, "resume", "--slot", "headline") == 0
    resumed = run_round(job)
    assert _headline(job.registry.get(resumed.snapshot)) != before


def test_an_unretired_variant_is_not_retired_again_until_resume(
    job: SyncJob, tmp_path: Path
) -> None:
    first = run_round(job)
    assert [(r.slot, r.variant) for r in first.retired] == [("headline", "hl-free-returns")]
    assert _cli(tmp_path, "unretire", "headline", "hl-free-returns") == 0
    again = run_round(job)
    assert again.retired == []
    slot = next(
        s
        for s in decode_snapshot(job.registry.get(again.snapshot)).site.slots
        if s.name == "headline"
    )
    free = next(v for v in slot.variants if v.id == "hl-free-returns")
    assert free.lifecycle is Lifecycle.ACTIVE
    assert _cli(tmp_path, "resume", "--slot", "headline/hl-free-returns") == 0
    assert [(r.slot, r.variant) for r in run_round(job).retired] == [
        ("headline", "hl-free-returns")
    ]


class _Flaky(DirTarget):
    """A target that refuses its first ``failures`` writes (a KV outage)."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures

    def put(self, key: str, value: bytes) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise TargetError(f"{key}: 503 from the KV API")
        super().put(key, value)


def test_a_failing_round_is_retried_and_the_loop_goes_on(
    job: SyncJob, tmp_path: Path, engine: Engine
) -> None:
    waits: list[float] = []
    job.targets = [_Flaky(tmp_path / "kv", failures=2)]
    results = run_loop(job, rounds=1, sleep=waits.append, show=False, backoff=5, interval=60)
    assert results[0].published and not results[0].error
    assert waits == [5, 10]  # two retries with backoff
    job.targets = [_Flaky(tmp_path / "kv", failures=10**6)]
    simulate(job.store, engine, 2000, seed=4)  # something new to publish
    waits.clear()
    results = run_loop(job, rounds=2, sleep=waits.append, show=False, retries=2, interval=60)
    assert len(results) == 2 and all("503 from the KV API" in r.error for r in results)
    assert waits == [5, 10, 60, 5, 10]  # retries, the interval, retries: the loop went on
    failed = [e for e in job.registry.audit_log() if e["action"] == "sync-failed"]
    assert [e["round"] for e in failed] == [1, 2]


def test_an_ongoing_alert_is_reported_in_the_round_it_opens_only(job: SyncJob) -> None:
    """The sync job keeps open alerts in the registry (alerts.json): a latency budget that
    every round exceeds is one alert, not one per round."""
    from origin.monitor import MonitorConfig

    job.monitor = MonitorConfig(budget_us=100)  # the simulated exposures took 150 us each
    first = run_round(job)
    assert [a.kind for a in first.alerts] == ["latency"]
    assert run_round(job).alerts == []  # still over budget, already reported
    assert (job.registry.root / "alerts.json").exists()
