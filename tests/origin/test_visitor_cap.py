"""One client clicking its own decisions moves the learned allocation by at most its capped
share: a visitor's policy draws count for learning up to ``VISITOR_CAP`` per slot and day."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.decide import decide
from core.engine import Engine
from core.events import exposure
from core.features import RequestContext, VisitorState
from core.model import ThompsonPolicy
from core.snapshot import decode_snapshot
from origin import training
from origin.registry import Registry
from origin.store import SqliteStore
from origin.sync import SyncJob, run_round
from origin.targets import DirTarget
from tests.conftest import FIXTURES
from tests.origin.helpers import NOW_MS, outcome
from tests.origin.test_sync_cli import simulate

ATTACKER = VisitorState("attacker-0001", visits=3, page_views=9, last_seen=NOW_MS // 1000)
CONTEXT = RequestContext(path="/", device="desktop", country="US")


def _target(engine: Engine) -> str:
    """The headline the attacker's cookie always gets (a visitor's draw is fixed)."""
    (d,) = decide(engine, ATTACKER, CONTEXT, NOW_MS // 1000, ["headline"])
    return d.variant


def _attack(store: SqliteStore, engine: Engine, views: int) -> None:
    """One visitor (one cookie) replaying the page and clicking its headline every time."""
    batch = []
    for n in range(views):
        now = NOW_MS // 1000 + n
        for d in decide(engine, ATTACKER, CONTEXT, now, ["headline"], nonce=f"{n:016x}"):
            sid = engine.snapshot_id
            batch.append(exposure(d, ATTACKER.visitor_id, sid, NOW_MS + n, 100, CONTEXT))
            batch.append(outcome(d.decision_id, ts=NOW_MS + n + 500, visitor=ATTACKER.visitor_id))
    store.append(batch)


def _weight(tmp_path: Path, engine: Engine, name: str, attack: int) -> float:
    store = SqliteStore(tmp_path / f"{name}.db")
    simulate(store, engine, 2000)
    if attack:
        _attack(store, engine, attack)
    job = SyncJob(
        config=FIXTURES / "site.toml",
        store=store,
        registry=Registry(tmp_path / f"{name}-reg"),
        targets=[DirTarget(tmp_path / f"{name}-kv")],
        model=FIXTURES / "model.json",
        clock=lambda: NOW_MS / 1000 + 3600,
    )
    result = run_round(job)
    site = decode_snapshot(job.registry.get(result.snapshot)).site
    slot = next(s for s in site.slots if s.name == "headline")
    assert isinstance(slot.policy, ThompsonPolicy)
    weights = dict(zip([v.id for v in slot.variants], slot.policy.weights, strict=True))
    return weights[_target(engine)]


def test_one_visitors_flood_moves_the_allocation_by_at_most_its_capped_share(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    honest = _weight(tmp_path, engine, "honest", attack=0)
    capped = _weight(tmp_path, engine, "capped", attack=3000)
    monkeypatch.setattr(training.rows_from, "__defaults__", (10**9,))  # no cap
    uncapped = _weight(tmp_path, engine, "uncapped", attack=3000)
    assert uncapped > honest + 0.2  # without the cap, one cookie steers the headline
    assert capped < honest + 0.05  # with it, its 20 draws among 2,000 visitors' barely count
