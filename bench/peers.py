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
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import vs_growthbook  # noqa: E402
from bench.in_pyodide import run_code  # noqa: E402
from bench.peer_work import ARMS, FEATURES, edgepick_figures  # noqa: E402
from bench.timing import measure  # noqa: E402
from compile.bundle import build  # noqa: E402

PYODIDE_CODE = """
import json
import bench.peer_work as work
json.dumps(work.edgepick_figures())
"""


def pyodide_figures() -> dict[str, Any]:
    """The same edgepick workload inside Pyodide 0.28.2 (Node, real WebAssembly)."""
    if not (ROOT / "node_modules" / "pyodide" / "package.json").exists():
        return {"skipped": "node_modules/pyodide is missing: run `make setup`"}
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        build(bundle)
        figures: dict[str, Any] = run_code(bundle, {"bench": ROOT / "bench"}, PYODIDE_CODE, 600)
    return figures


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


RULES = "rules_experiment_decide_us"


def _ratio(peer: dict[str, Any], ours: dict[str, Any]) -> float:
    return round(float(peer["median_us"]) / float(ours["median_us"]), 1)


def main() -> None:
    rng = random.Random(7)
    ours = edgepick_figures()
    in_pyodide = pyodide_figures()
    result: dict[str, Any] = {
        "benchmark": "peers",
        "python": platform.python_version(),
        "arms": ARMS,
        "features": len(FEATURES),
        "edgepick_cpython": ours,
        "edgepick_pyodide": in_pyodide,
    }
    ratios: dict[str, dict[str, float]] = {"vs_cpython": {}, "vs_pyodide": {}}
    peers: list[tuple[str, dict[str, Any], str]] = []
    try:
        mab = mabwiser_figures(rng)
        result["mabwiser"] = mab
        peers += [
            ("mabwiser_thompson", mab["thompson_predict_us"], "thompson_decide_us"),
            ("mabwiser_linucb", mab["linucb_predict_us"], "linear_decide_us"),
        ]
    except ImportError as exc:
        result["mabwiser"] = {"skipped": str(exc)}
    try:
        vw = vw_figures(rng)
        result["vowpalwabbit"] = vw
        peers.append(("vw_cb_explore_adf", vw["cb_explore_adf_predict_us"], "linear_decide_us"))
    except ImportError as exc:
        result["vowpalwabbit"] = {"skipped": str(exc)}
    gb = vs_growthbook.comparison()
    result["growthbook"] = gb
    if "per_evaluation" in gb:
        medians = gb["per_evaluation"]["median_us"]
        peers += [
            ("growthbook_reused_instance", {"median_us": medians["growthbook_reused"]}, RULES),
            ("growthbook_new_instance", {"median_us": medians["growthbook_new"]}, RULES),
        ]
    for name, peer, ours_key in peers:
        ratios["vs_cpython"][name] = _ratio(peer, ours[ours_key])
        if ours_key in in_pyodide:
            ratios["vs_pyodide"][name] = _ratio(peer, in_pyodide[ours_key])
    if "per_evaluation" in gb:  # measured interleaved with edgepick: the steadier figure
        ratios["vs_cpython"]["growthbook_reused_instance"] = gb["per_evaluation"][
            "speedup_vs_reused_instance"
        ]
        ratios["vs_cpython"]["growthbook_new_instance"] = gb["per_evaluation"][
            "speedup_vs_new_instance"
        ]
    result["ratios_peer_over_edgepick"] = ratios
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
