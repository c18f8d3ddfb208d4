"""Side-by-side speed against peer libraries, at equal numbers of arms and features, in one run.

- context-free bandit, 10 arms: edgepick Thompson allocation slot vs mabwiser ThompsonSampling
  ``predict``;
- contextual, 10 arms x 20 features: edgepick linear slot (precomputed weights, softmax) vs
  mabwiser LinUCB ``predict`` and Vowpal Wabbit ``cb_explore_adf`` ``predict``;
- rules + experiment: edgepick vs GrowthBook's SDK (bench/decide.py's comparison).

Prints JSON with medians (microseconds per decision) and ratios (peer / edgepick): the machine is
noisy, ratios from one run are what to compare. Run: ``.venv/bin/python bench/peers.py``.
"""

from __future__ import annotations

import json
import platform
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.decide import growthbook_comparison, measure  # noqa: E402
from core.decide import decide  # noqa: E402
from core.engine import Engine  # noqa: E402
from core.features import RequestContext, VisitorState  # noqa: E402
from core.model import (  # noqa: E402
    Exploration,
    Granularity,
    LinearArm,
    LinearPolicy,
    Site,
    Slot,
    ThompsonPolicy,
    Variant,
)

ARMS = 10
FEATURES = (
    "bias",
    "visits",
    "recency",
    "new_visitor",
    "weekend",
    *(f"affinity:c{i}" for i in range(8)),
    "device:mobile",
    "device:tablet",
    "referrer:search",
    "referrer:social",
    "referrer:email",
    "utm:newsletter",
    "stage:cart",
)
NOW = 1_790_000_000


def bench_site(rng: random.Random) -> Engine:
    variants = tuple(Variant(f"v{i}", f"<p>{i}</p>") for i in range(ARMS))
    weights = [rng.random() for _ in range(ARMS)]
    thompson = Slot(
        "ts10",
        Granularity.COMPONENT,
        "v0",
        variants,
        ThompsonPolicy(tuple(w / sum(weights) for w in weights), 0.05),
    )
    arms = tuple(
        LinearArm(rng.gauss(0, 0.05), tuple(rng.gauss(0, 0.1) for _ in FEATURES))
        for _ in range(ARMS)
    )
    linear = Slot(
        "lin10",
        Granularity.COMPONENT,
        "v0",
        variants,
        LinearPolicy(FEATURES, arms, Exploration.SOFTMAX, 0.1, 50.0, 0.02),
    )
    return Engine.from_site(Site("peers", (thompson, linear), epoch=1))


def visitor(i: int) -> VisitorState:
    return VisitorState(
        f"peer-{i}",
        visits=1 + i % 7,
        page_views=5 + i % 30,
        first_seen=NOW - 86400 * 20,
        last_seen=NOW - 3600 * (i % 48),
        stage="cart" if i % 5 == 0 else "consider",
        affinity=((f"c{i % 8}", 3.0), (f"c{(i + 3) % 8}", 1.0)),
    )


CONTEXT = RequestContext(path="/", device="mobile", country="US", referrer="search", hour=19)


def mabwiser_figures(rng: random.Random) -> dict[str, Any]:
    import numpy as np
    from mabwiser.mab import MAB, LearningPolicy

    n = 2000
    decisions = [rng.randrange(ARMS) for _ in range(n)]
    rewards = [int(rng.random() < 0.05 + 0.01 * d) for d in decisions]
    contexts = np.array([[rng.random() for _ in FEATURES] for _ in range(n)])
    ts = MAB(arms=list(range(ARMS)), learning_policy=LearningPolicy.ThompsonSampling(), seed=1)
    ts.fit(decisions, rewards)
    lin = MAB(arms=list(range(ARMS)), learning_policy=LearningPolicy.LinUCB(alpha=1.0), seed=1)
    lin.fit(decisions, rewards, contexts)
    rows = [contexts[i : i + 1] for i in range(200)]
    return {
        "thompson_predict_us": measure(lambda i: ts.predict(), batches=60, per_batch=20),
        "linucb_predict_us": measure(
            lambda i: lin.predict(rows[i % 200]), batches=60, per_batch=20
        ),
    }


def vw_figures(rng: random.Random) -> dict[str, Any]:
    from vowpalwabbit import Workspace

    vw = Workspace("--cb_explore_adf --epsilon 0.05 --quiet")
    names = [f.replace(":", "_") for f in FEATURES]

    def example(i: int, label: int | None = None, cost: float = 0.0, p: float = 0.1) -> list[str]:
        shared = "shared |s " + " ".join(
            f"{name}:{(i * 7 + k) % 10 / 10}" for k, name in enumerate(names)
        )
        actions = []
        for a in range(ARMS):
            prefix = f"0:{cost}:{p} " if label == a else ""
            actions.append(f"{prefix}|a arm{a}")
        return [shared, *actions]

    for i in range(2000):  # train a little so predict scores something real
        a = rng.randrange(ARMS)
        vw.learn(example(i, a, -float(rng.random() < 0.05 + 0.01 * a)))
    examples = [example(i) for i in range(200)]
    return {
        "cb_explore_adf_predict_us": measure(
            lambda i: vw.predict(examples[i % 200]), batches=60, per_batch=20
        )
    }


def main() -> None:
    rng = random.Random(7)
    engine = bench_site(rng)
    ours_ts = measure(lambda i: decide(engine, visitor(i), CONTEXT, NOW, ("ts10",)))
    ours_lin = measure(lambda i: decide(engine, visitor(i), CONTEXT, NOW, ("lin10",)))
    result: dict[str, Any] = {
        "benchmark": "peers",
        "python": platform.python_version(),
        "arms": ARMS,
        "features": len(FEATURES),
        "edgepick": {"thompson_decide_us": ours_ts, "linear_decide_us": ours_lin},
    }
    ratios: dict[str, float] = {}
    try:
        mab = mabwiser_figures(rng)
        result["mabwiser"] = mab
        ratios["mabwiser_thompson_vs_edgepick"] = round(
            mab["thompson_predict_us"]["median_us"] / ours_ts["median_us"], 1
        )
        ratios["mabwiser_linucb_vs_edgepick_linear"] = round(
            mab["linucb_predict_us"]["median_us"] / ours_lin["median_us"], 1
        )
    except ImportError as exc:
        result["mabwiser"] = {"skipped": str(exc)}
    try:
        vw = vw_figures(rng)
        result["vowpalwabbit"] = vw
        ratios["vw_cb_explore_adf_vs_edgepick_linear"] = round(
            vw["cb_explore_adf_predict_us"]["median_us"] / ours_lin["median_us"], 1
        )
    except ImportError as exc:
        result["vowpalwabbit"] = {"skipped": str(exc)}
    gb = growthbook_comparison()
    result["growthbook"] = gb
    if "speedup_vs_reused_instance" in gb:
        ratios["growthbook_vs_edgepick"] = gb["speedup_vs_reused_instance"]
    result["ratios_peer_over_edgepick"] = ratios
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
