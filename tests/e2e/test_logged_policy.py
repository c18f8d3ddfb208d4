"""Issue 10, defect 9, for real: a policy draw's exposure carries the policy's distribution
(eligible arms and their probabilities), consistent with the propensity logged, as the origin
stored it (``edgepick inspect decision``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.decide import in_holdout
from core.model import Site
from core.snapshot import decode_snapshot
from tests.e2e.conftest import BrowserRun, Loop

HERO = '[data-edgepick-slot="hero"][data-edgepick-decision]'
RECS = '[data-edgepick-slot="recs"][data-edgepick-decision]'
VISITORS = 4  # fresh visitors tried until one is not in the 5% holdout (bounded)


def site_of(loop: Loop, decision: dict[str, Any]) -> Site:
    """The site of the snapshot that made a stored decision."""
    blob = (loop.registry / "snapshots" / f"{decision['snapshot']}.snap").read_bytes()
    return decode_snapshot(blob).site


def drawn(loop: Loop, browser: Callable[..., BrowserRun]) -> list[dict[str, Any]]:
    """The stored decisions of one visitor's home page that a policy drew (not a rule or the
    holdout), from the first of up to ``VISITORS`` fresh visitors outside the site's holdout
    (a held-out visitor's decisions are all the holdout's defaults)."""
    for _ in range(VISITORS):
        run = browser(
            [{"goto": "/"}, {"waitFor": RECS}, {"eval": "edgepick.decisions()"}, {"cookies": True}]
        )
        shown, visitor = run.value(2), loop.state(run.cookie()).visitor_id
        found = [loop.wait_inspect("decision", d, lambda _d: True) for d in shown]
        assert found and {d["visitor"] for d in found} == {visitor}, found
        if not in_holdout(visitor, site_of(loop, found[0]).holdout):
            policy = [d for d in found if d["reason"] == "policy"]
            assert policy, found  # a new visitor outside the holdout: the policies draw
            return policy
        assert {d["reason"] for d in found} == {"holdout"}, found
    raise AssertionError(f"{VISITORS} fresh visitors, every one in the holdout")


def test_policy_draws_log_their_distribution(
    loop: Loop, browser: Callable[..., BrowserRun]
) -> None:
    decisions = drawn(loop, browser)
    assert {d["slot"] for d in decisions} & {"hero", "recs", "headline"}
    for d in decisions:
        assert "probs" in d and "eligible" in d, d
        slot = next(s for s in site_of(loop, d).slots if s.name == d["slot"])
        variants = [v.id for v in slot.variants]
        chosen = variants.index(d["variant"])
        assert chosen in d["eligible"], d
        assert all(0 <= i < len(variants) for i in d["eligible"])
        assert sum(d["probs"]) == pytest.approx(1.0, abs=1e-4)
        # the logged propensity is the probability the distribution gave the chosen arm
        assert d["probs"][d["eligible"].index(chosen)] == pytest.approx(d["propensity"], rel=1e-5)
