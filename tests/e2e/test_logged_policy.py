"""Issue 10, defect 9, for real: a policy draw's exposure carries the policy's distribution
(eligible arms and their probabilities), consistent with the propensity logged, as the origin
stored it (``edgepick inspect decision``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.snapshot import decode_snapshot
from tests.e2e.conftest import BrowserRun, Loop

HERO = '[data-edgepick-slot="hero"][data-edgepick-decision]'
RECS = '[data-edgepick-slot="recs"][data-edgepick-decision]'
VISITORS = 4  # fresh visitors tried until one is not in the 5% holdout (bounded)


def drawn(loop: Loop, browser: Callable[..., BrowserRun]) -> list[dict[str, Any]]:
    """The stored decisions of one visitor's home page that a policy drew (not a rule or the
    holdout)."""
    for _ in range(VISITORS):
        run = browser([{"goto": "/"}, {"waitFor": RECS}, {"eval": "edgepick.decisions()"}])
        shown = run.value(2)
        found = [loop.wait_inspect("decision", d, lambda _d: True) for d in shown]
        policy = [d for d in found if d["reason"] == "policy"]
        if policy:
            return policy
    raise AssertionError(f"{VISITORS} fresh visitors and not one policy draw")


def test_policy_draws_log_their_distribution(
    loop: Loop, browser: Callable[..., BrowserRun]
) -> None:
    decisions = drawn(loop, browser)
    assert {d["slot"] for d in decisions} & {"hero", "recs", "headline"}
    for d in decisions:
        assert "probs" in d and "eligible" in d, d
        blob = (loop.registry / "snapshots" / f"{d['snapshot']}.snap").read_bytes()
        slot = next(s for s in decode_snapshot(blob).site.slots if s.name == d["slot"])
        variants = [v.id for v in slot.variants]
        chosen = variants.index(d["variant"])
        assert chosen in d["eligible"], d
        assert all(0 <= i < len(variants) for i in d["eligible"])
        assert sum(d["probs"]) == pytest.approx(1.0, abs=1e-4)
        # the logged propensity is the probability the distribution gave the chosen arm
        assert d["probs"][d["eligible"].index(chosen)] == pytest.approx(d["propensity"], rel=1e-5)
