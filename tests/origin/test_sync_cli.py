"""The scheduled job end to end on the fixture site, and the origin's CLI commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli.main import main
from core.decide import decide
from core.engine import Engine
from core.events import exposure as exposure_event
from core.events import page_view
from core.features import RequestContext, VisitorState
from core.model import Lifecycle, ThompsonPolicy
from core.profile import decode_profile, profile_key
from core.snapshot import decode_snapshot
from origin.publish import CURRENT_KEY
from origin.registry import Registry
from origin.store import EventStore, SqliteStore
from origin.sync import SyncJob, run_loop, run_round
from origin.targets import DirTarget
from tests.conftest import FIXTURES
from tests.origin.helpers import NOW_MS, identify, outcome

TRUTH = {
    "hl-classic": 0.04,
    "hl-free-returns": 0.0,
    "hl-fast-shipping": 0.15,
    "hl-sustainability": 0.05,
    "hl-members": 0.03,
}


def simulate(store: EventStore, engine: Engine, visitors: int, seed: int = 0) -> None:
    """Visitors decided by the real core on the fixture snapshot; clicks from TRUTH."""
    rng = np.random.default_rng(seed)
    now = NOW_MS // 1000
    batch: list[dict[str, Any]] = []
    for n in range(visitors):
        state = VisitorState(f"sim-{seed}-{n}", visits=2, page_views=3, last_seen=now - 3600)
        context = RequestContext(
            path="/", device="mobile" if n % 3 == 0 else "desktop", country="US"
        )
        # the page view the edge sends with every page (stitching counts these)
        batch.append(page_view(f"pv-{seed}-{n}", state.visitor_id, NOW_MS + n, "/", ""))
        for d in decide(engine, state, context, now, ["headline", "hero"]):
            event = exposure_event(
                d, state.visitor_id, engine.snapshot_id, NOW_MS + n, 150, context
            )
            batch.append(event)
            rate = TRUTH.get(d.variant, 0.05)
            if rng.random() < rate:
                batch.append(outcome(d.decision_id, ts=NOW_MS + n + 1000, visitor=state.visitor_id))
        if len(batch) > 400:
            store.append(batch)
            batch = []
    store.append(batch)


@pytest.fixture
def job(tmp_path: Path, engine: Engine) -> SyncJob:
    store = SqliteStore(tmp_path / "events.db")
    simulate(store, engine, 3000)
    store.append([identify("sim-0-1", "u-1", ts=NOW_MS + 10)])
    return SyncJob(
        config=FIXTURES / "site.toml",
        store=store,
        registry=Registry(tmp_path / "reg"),
        targets=[DirTarget(tmp_path / "kv")],
        model=FIXTURES / "model.json",
        clock=lambda: NOW_MS / 1000 + 3600,
    )


def test_sync_round_learns_retires_publishes_and_is_stable(job: SyncJob, tmp_path: Path) -> None:
    steps: list[str] = []
    first = run_round(job, steps.append)
    assert steps == ["collect", "retire", "learn", "compile", "publish", "profiles", "monitor"]
    assert first.published and first.rows > 3000 and first.learnable > 0
    kv = DirTarget(tmp_path / "kv")
    assert kv.get(CURRENT_KEY) == first.snapshot.encode()
    snap = decode_snapshot(kv.get(f"snap/{first.snapshot}") or b"")
    headline = next(s for s in snap.site.slots if s.name == "headline")
    assert isinstance(headline.policy, ThompsonPolicy)
    weights = dict(zip([v.id for v in headline.variants], headline.policy.weights, strict=True))
    assert max(weights, key=weights.__getitem__) == "hl-fast-shipping"
    # hl-free-returns never engages and has min_engagement = 0.01: retired, audited
    assert [(r.slot, r.variant) for r in first.retired] == [("headline", "hl-free-returns")]
    free = next(v for v in headline.variants if v.id == "hl-free-returns")
    assert free.lifecycle is Lifecycle.RETIRED and weights["hl-free-returns"] == 0.0
    actions = [e["action"] for e in job.registry.audit_log()]
    assert actions == ["retire", "publish"]
    assert (job.registry.root / "models" / f"{first.snapshot}.json").exists()
    profile = decode_profile(kv.get(profile_key("u-1")) or b"")
    assert profile is not None and profile.user_id == "u-1" and profile.page_views == 1
    # nothing new: same snapshot id (seeded learner), nothing republished
    second = run_round(job)
    assert second.snapshot == first.snapshot and not second.published and not second.retired
    # unretire through the CLI: the next round compiles it back in, as a new snapshot
    registry = str(job.registry.root)
    assert main(["unretire", "headline", "hl-free-returns", "--registry", registry]) == 0
    job.retire = type(job.retire)(min_samples=10**9)  # keep the learner from retiring it again
    third = run_round(job)
    assert third.published and third.snapshot != first.snapshot
    snap = decode_snapshot(kv.get(f"snap/{third.snapshot}") or b"")
    headline = next(s for s in snap.site.slots if s.name == "headline")
    assert (
        next(v for v in headline.variants if v.id == "hl-free-returns").lifecycle
        is Lifecycle.ACTIVE
    )
    assert snap.header.parent == first.snapshot


def test_run_loop_is_bounded_and_sleeps_between_rounds(job: SyncJob) -> None:
    slept: list[float] = []
    results = run_loop(job, rounds=2, interval=7.0, sleep=slept.append, show=False)
    assert len(results) == 2 and slept == [7.0]
    assert len(run_loop(job, once=True, sleep=slept.append, show=False)) == 1 and slept == [7.0]


def test_cli_publish_history_diff_rollback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg, kv = str(tmp_path / "reg"), f"dir:{tmp_path / 'kv'}"
    a, b = tmp_path / "a.snap", tmp_path / "b.snap"
    assert (
        main(
            [
                "compile",
                str(FIXTURES / "site.toml"),
                "--model",
                str(FIXTURES / "model.json"),
                "-o",
                str(a),
            ]
        )
        == 0
    )
    model = json.loads((FIXTURES / "model.json").read_text())
    model["slots"]["promo"]["weights"]["promo-none"] = 0.4
    (tmp_path / "m.json").write_text(json.dumps(model))
    assert (
        main(
            [
                "compile",
                str(FIXTURES / "site.toml"),
                "--model",
                str(tmp_path / "m.json"),
                "-o",
                str(b),
            ]
        )
        == 0
    )
    first = ["--message", "first", "--author", "ana"]
    assert main(["publish", str(a), "--registry", reg, "--target", kv, *first]) == 0
    assert main(["publish", str(b), "--registry", reg, "--target", kv]) == 0
    capsys.readouterr()
    ida = decode_snapshot(a.read_bytes()).header.id
    idb = decode_snapshot(b.read_bytes()).header.id
    assert main(["history", "--registry", reg]) == 0
    history = capsys.readouterr().out
    assert ida in history and idb in history
    row = next(line for line in history.splitlines() if ida in line)
    assert row.endswith("ana: first")  # who published it and why, from the audit log
    assert main(["diff", ida[:8], idb[:8], "--registry", reg, "--detail"]) == 0
    said = capsys.readouterr().out
    assert "promo, everyone: promo-none 30% (was 11%, +19 pp)" in said
    assert "~ weight[promo-none] 0.1000 -> 0.4000" in said
    assert main(["rollback", ida[:8], "--registry", reg, "--target", kv]) == 0
    assert (tmp_path / "kv" / "snap" / "current").read_bytes() == ida.encode()
    assert main(["history", "--registry", reg, "--audit"]) == 0
    audit = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    assert [e["action"] for e in audit] == ["publish", "publish", "rollback", "pin"]
    assert main(["rollback", "zzzz", "--registry", reg, "--target", kv]) == 1
    assert "not in the registry" in capsys.readouterr().err
    assert main(["publish", str(a), "--registry", reg, "--target", "ftp:x"]) == 1


def test_a_failed_round_is_one_line_with_its_text_as_it_was(
    job: SyncJob, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A round's error is printed as text (not rich markup: ``[errno 2]`` stays) on one line,
    whatever the width of what stderr is (cron, a journal)."""

    def broken(*_: Any, **__: Any) -> Any:
        raise OSError("Detail: [errno 2] No such file or directory: " + "/very/long/path" * 8)

    monkeypatch.setattr("origin.sync.run_round", broken)
    results = run_loop(job, once=True, sleep=lambda _: None)
    assert results[0].error
    lines = [line for line in capsys.readouterr().err.splitlines() if "round 1:" in line]
    assert len(lines) == 1 and "[errno 2] No such file" in lines[0], lines
