"""Thompson allocations per audience segment: one posterior per (slot, variant, segment)."""

from __future__ import annotations

import random
from typing import Any

from compile.site import compile_site, load_model, load_toml
from core.decide import decide
from core.engine import Engine
from core.events import exposure
from core.features import RequestContext, VisitorState
from origin.aggregates import aggregate
from origin.learn import learn, widths
from origin.store import SqliteStore
from origin.training import TrainingRow, training_rows
from tests.conftest import FIXTURES

BEST = {"mobile": "hl-fast-shipping", "": "hl-classic"}


def rows(n: int, seed: int = 1) -> list[TrainingRow]:
    rng = random.Random(seed)
    out = []
    variants = ["hl-classic", "hl-free-returns", "hl-fast-shipping", "hl-sustainability"]
    for i in range(n):
        segment = "mobile" if i % 2 else ""
        variant = rng.choice(variants)
        p = 0.12 if variant == BEST[segment] else 0.03
        reward = float(rng.random() < p)
        out.append(
            TrainingRow(
                f"d{i}",
                i,
                f"v{i}",
                "headline",
                variant,
                0.25,
                "policy",
                "s",
                (),
                int(reward),
                0,
                0.0,
                reward,
                segment,
            )
        )
    return out


def test_each_segment_learns_its_own_best_variant() -> None:
    site = compile_site(load_toml(FIXTURES / "site.toml"))
    model = learn(site, aggregate(rows(6000), widths(site)))
    headline = model["slots"]["headline"]
    mobile = headline["segments"]["mobile"]
    assert max(mobile, key=mobile.get) == "hl-fast-shipping"
    assert headline["weights"]["hl-fast-shipping"] < mobile["hl-fast-shipping"]
    compiled = compile_site(load_toml(FIXTURES / "site.toml"), model)
    slot = next(s for s in compiled.slots if s.name == "headline")
    assert slot.policy.segments == ("mobile",)  # type: ignore[union-attr]


def test_the_segment_travels_from_decision_to_training_row(tmp_path: Any) -> None:
    engine = Engine.from_site(
        compile_site(load_toml(FIXTURES / "site.toml"), load_model(FIXTURES / "model.json"))
    )
    store = SqliteStore(tmp_path / "events.db")
    phone = RequestContext(device="mobile")
    batch = []
    for i in range(50):
        state = VisitorState(f"v{i}", visits=2, page_views=5)
        for d in decide(engine, state, phone, 1_790_000_000, ["headline"]):
            batch.append(exposure(d, state.visitor_id, engine.snapshot_id, 1, 10, phone))
    store.append(batch)
    segments = {r.segment for r in training_rows(store) if r.reason == "policy"}
    assert segments == {"mobile"}
