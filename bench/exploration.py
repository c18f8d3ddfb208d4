"""Exploration benchmark (issue 12, "Exploration never decays"): prints one JSON document.

Quality, with the project's own simulator (``origin.simulate.run_seeds``: the real core, learner
and compiler, ``--seeds`` seeds, mean and spread), before and after:

- ``contextual``: the ``hero`` slot, ``--rounds`` (160) x 250 visitors = 40,000 decisions of
  the contextual policy; target: the last round's served policy earns >= 90% of the oracle's
  CTR on the same visitors (``served_share_of_oracle``, the mean over seeds);
- ``context_free``: one best variant for everyone (``--truth context-free``), 40 x 250
  decisions; target: linear's cumulative regret <= 1.3 x Thompson's (the ratio of the mean
  regrets over seeds; the mean of the per-seed ratios is reported too).

"before" is the linear slot as the fixture authors it (softmax, T = 0.05) with the learner's
fixed ridge; "after" is ``squarecb`` with the evidence-chosen arm prior. Both keep the slot's
5% floor.

Speed: microseconds per ``PreparedLinear.score`` of the fixture's hero policy (15 features,
8 arms) under each exploration, and per ``decide`` of that slot.

Run: ``.venv/bin/python bench/exploration.py`` (``--seeds 3 --rounds 40`` for a quick look,
``--skip-before``). Takes about 3-4 minutes with the defaults on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.decide import CONTEXT, NOW, visitor  # noqa: E402
from bench.timing import measure  # noqa: E402
from compile.build import build_snapshot  # noqa: E402
from core.decide import decide  # noqa: E402
from core.engine import Engine  # noqa: E402
from core.model import Exploration, LinearPolicy  # noqa: E402
from core.policies import prepare  # noqa: E402
from origin.simulate import SimConfig, run_seeds  # noqa: E402

SERVED_TARGET = 0.90
RATIO_TARGET = 1.3


def quality(seeds: int, rounds: int, skip_before: bool) -> dict[str, Any]:
    variants = {
        "before": {"exploration": "", "empirical_bayes": False},  # as authored: softmax
        "after": {"exploration": "squarecb", "empirical_bayes": True},
    }
    if skip_before:
        del variants["before"]
    out: dict[str, Any] = {}
    for name, knobs in variants.items():
        began = time.perf_counter()
        contextual = run_seeds(
            SimConfig(rounds=rounds, batch=250, policies=("linear",), **knobs),  # type: ignore[arg-type]
            seeds,
        )
        flat = run_seeds(
            SimConfig(
                rounds=40,
                batch=250,
                policies=("fixed", "thompson", "linear"),
                truth="context-free",
                **knobs,  # type: ignore[arg-type]
            ),
            seeds,
        )
        served = contextual["policies"]["linear"]["served_share_of_oracle"]
        regret = {k: v["cumulative_regret"] for k, v in flat["policies"].items()}
        ratio_of_means = regret["linear"]["mean"] / regret["thompson"]["mean"]
        out[name] = {
            "contextual": {
                "decisions": rounds * 250,
                "oracle_ctr": contextual["oracle_ctr"],
                "served_share_of_oracle_last_round": served,
                "served_ctr_last_round": contextual["policies"]["linear"]["served_ctr_last_round"],
                "greedy_ctr_last_round": contextual["policies"]["linear"]["greedy_ctr_last_round"],
                "cumulative_regret": contextual["policies"]["linear"]["cumulative_regret"],
                "target": f"served_share_of_oracle_last_round mean >= {SERVED_TARGET}",
                "met": served["mean"] >= SERVED_TARGET,
            },
            "context_free": {
                "decisions": 40 * 250,
                "cumulative_regret": regret,
                "linear_over_thompson": {
                    "ratio_of_mean_regrets": round(ratio_of_means, 3),
                    "per_seed_ratio": flat["linear_over_thompson_regret"],
                },
                "served_share_of_oracle_last_round": {
                    k: v["served_share_of_oracle"] for k, v in flat["policies"].items()
                },
                "target": f"ratio_of_mean_regrets <= {RATIO_TARGET}",
                "met": ratio_of_means <= RATIO_TARGET,
            },
            "seconds": round(time.perf_counter() - began, 1),
        }
    return out


def speed() -> dict[str, Any]:
    blob = build_snapshot(ROOT / "fixtures" / "site.toml", ROOT / "fixtures" / "model.json")
    engine = Engine.from_bytes(blob)
    prepared = engine.slots["hero"]
    policy = prepared.slot.policy
    assert isinstance(policy, LinearPolicy)
    eligible = list(prepared.active)
    x = tuple(1.0 if i % 3 == 0 else 0.0 for i in range(len(policy.features)))
    learned = tuple(40.0 + 7.0 * i for i in range(len(policy.arms)))
    policies = {
        "softmax": replace(policy, exploration=Exploration.SOFTMAX),
        "igw": replace(policy, exploration=Exploration.IGW),
        "squarecb": replace(policy, exploration=Exploration.SQUARECB, gammas=learned),
    }

    def scoring(policy: LinearPolicy) -> Callable[[int], Any]:
        prepared_policy = prepare(policy, "hero", 0)
        return lambda i: prepared_policy.score(eligible, x, False)

    out: dict[str, Any] = {"score_us": {name: measure(scoring(p)) for name, p in policies.items()}}
    out["decide_hero_us"] = measure(lambda i: decide(engine, visitor(i), CONTEXT, NOW, ("hero",)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=160, help="contextual rounds of 250")
    parser.add_argument("--skip-before", action="store_true")
    args = parser.parse_args()
    result = {
        "benchmark": "exploration",
        "python": platform.python_version(),
        "seeds": args.seeds,
        "speed": speed(),
        "quality": quality(args.seeds, args.rounds, args.skip_before),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
