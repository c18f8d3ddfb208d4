"""edgepick ``decide()`` against GrowthBook's Python SDK on the same experiment and visitors.

The experiment (``bench/peer_work.py``): two force rules and a 4-way split behind a condition,
hash version 2, the same seed on both sides, so both put each visitor in the same variation
(checked for 200 visitors on every run). The visitors are realistic and mixed
(``bench.peer_work.mixed_visitors``: 16-hex ids; countries, devices, visit counts, referrers
and UTM sources such that the force rules, the experiment and the default all occur), each
side given its own form of the same visitor.

Per evaluation: each side's inputs (edgepick's visitor states, GrowthBook's attribute
documents) are built before timing; the timed call is the evaluation for one new visitor. (At
the edge the visitor state comes out of the cookie decoder, measured on its own in
bench/decide.py.) A second pair of runs builds each side's input inside the timed call.
The machine is shared and noisy, so the sides run interleaved, round by round, and the speed-up
is the median of the per-round ratios. ``--instructions`` (needs valgrind) also counts CPU
instructions per call with callgrind, a figure that does not move with the machine's load.

Run alone: ``.venv/bin/python -m bench.vs_growthbook [--instructions]``; ``bench/decide.py`` and
``bench/peers.py`` include its figures.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench.peer_work as work
from core.decide import decide
from core.engine import Engine
from core.features import RequestContext, VisitorState

ROOT = Path(__file__).resolve().parent.parent
FEATURES = {
    "cta": {
        "defaultValue": "shop-now",
        "rules": [
            {"condition": work.GB_CONDITIONS[0], "force": "explore"},
            {"condition": work.GB_CONDITIONS[1], "force": "deals"},
            {
                "condition": work.GB_CONDITIONS[2],
                "key": work.GB_SEED,
                "seed": work.GB_SEED,
                "hashVersion": 2,
                "variations": list(work.GB_VARIANTS),
                "weights": [0.25] * 4,
            },
        ],
    }
}
VISITORS = 2000
COUNTED_CALLS = 2000  # calls per side under callgrind


def state_of(doc: dict[str, Any]) -> VisitorState:
    """edgepick's form of a visitor document: what its cookie holds."""
    return VisitorState(doc["id"], visits=doc["visits"])


def context_of(doc: dict[str, Any]) -> RequestContext:
    """edgepick's form of a visitor document: what its request says."""
    return RequestContext(
        device=doc["device"],
        country=doc["country"],
        referrer=doc["referrer"],
        utm_source=doc["utmSource"],
    )


class Sides:
    """Both engines, prepared, with each side's inputs for ``VISITORS`` visitors built."""

    def __init__(self) -> None:
        from growthbook import GrowthBook

        self.growthbook_class = GrowthBook
        self.engine = Engine.from_site(work.rules_site())
        self.documents = work.mixed_visitors(VISITORS)
        self.states: list[VisitorState] = [state_of(d) for d in self.documents]
        self.contexts = [context_of(d) for d in self.documents]
        self.nonces = [f"{i:016x}" for i in range(VISITORS)]  # the edge's request ids
        self.reused = GrowthBook(attributes=self.documents[0], features=FEATURES)

    def ours(self, i: int) -> str:
        state, context, nonce = self.states[i], self.contexts[i], self.nonces[i]
        return decide(self.engine, state, context, work.NOW, ("cta",), nonce=nonce)[0].variant

    def theirs_reused(self, i: int) -> Any:
        self.reused.set_attributes(self.documents[i])
        return self.reused.eval_feature("cta").value

    def theirs_new(self, i: int) -> Any:
        gb = self.growthbook_class(attributes=self.documents[i], features=FEATURES)
        return gb.eval_feature("cta").value

    # the same calls, each building its own input first (a visitor state and request id; an
    # attribute document), for readers who count that in
    def ours_building(self, i: int) -> str:
        doc, nonce = self.documents[i], f"{i:016x}"
        state, context = state_of(doc), context_of(doc)
        return decide(self.engine, state, context, work.NOW, ("cta",), nonce=nonce)[0].variant

    def theirs_reused_building(self, i: int) -> Any:
        self.reused.set_attributes(dict(self.documents[i]))
        return self.reused.eval_feature("cta").value

    def calls(self) -> dict[str, Callable[[int], Any]]:
        """Each timed call by the name the figures use."""
        return {
            "edgepick": self.ours,
            "growthbook_reused": self.theirs_reused,
            "growthbook_new": self.theirs_new,
            "edgepick_building_input": self.ours_building,
            "growthbook_reused_building_input": self.theirs_reused_building,
        }


def _batch_us(fn: Callable[[int], Any], start: int, count: int) -> float:
    begin = time.perf_counter_ns()
    for i in range(start, start + count):
        fn(i)
    return (time.perf_counter_ns() - begin) / count / 1000


def interleaved(sides: Sides, rounds: int = 60, per_round: int = 200) -> dict[str, Any]:
    """Median microseconds per call of each side, and the median per-round speed-up."""
    runs = sides.calls()
    for fn in runs.values():  # warm up
        _batch_us(fn, 0, per_round)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(rounds):
        start = (r * per_round) % (VISITORS - per_round)
        for name, fn in runs.items():
            times[name].append(_batch_us(fn, start, per_round))
    ours = times["edgepick"]
    median = {name: round(statistics.median(t), 2) for name, t in times.items()}
    return {
        "median_us": median,
        "speedup_vs_reused_instance": _median_ratio(times["growthbook_reused"], ours),
        "speedup_vs_new_instance": _median_ratio(times["growthbook_new"], ours),
        "speedup_vs_reused_instance_building_inputs": _median_ratio(
            times["growthbook_reused_building_input"], times["edgepick_building_input"]
        ),
    }


def _median_ratio(theirs: list[float], ours: list[float]) -> float:
    return round(statistics.median(t / o for t, o in zip(theirs, ours, strict=True)), 2)


def instruction_counts() -> dict[str, Any]:
    """CPU instructions per call of each side, from callgrind (a run with and without calls)."""
    if shutil.which("valgrind") is None:
        return {"skipped": "valgrind not installed (Debian: apt-get install valgrind)"}
    per_call = {}
    for side in ("edgepick", "growthbook_reused", "growthbook_new"):
        with_calls, without = _count(side, COUNTED_CALLS), _count(side, 0)
        per_call[side] = (with_calls - without) // COUNTED_CALLS
    ours = per_call["edgepick"]
    return {
        "instructions_per_call": per_call,
        "ratio_vs_reused_instance": round(per_call["growthbook_reused"] / ours, 2),
        "ratio_vs_new_instance": round(per_call["growthbook_new"] / ours, 2),
    }


def _count(side: str, calls: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "bench.vs_growthbook",
        "--calls",
        side,
        str(calls),
    ]
    # the same hash seed in both runs, and no .pyc written by the first for the second to skip
    env = {"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count: {done.stderr[-500:]}")
    return int(found.group(1))


def _calls(side: str, calls: int) -> None:
    """The process callgrind counts: set up, warm up, then ``calls`` evaluations."""
    sides = Sides()
    fn = sides.calls()[side]
    for i in range(100):
        fn(i)
    for i in range(calls):
        fn(i % VISITORS)


def comparison(instructions: bool = False) -> dict[str, Any]:
    """The figures bench/decide.py and bench/peers.py print."""
    try:
        import growthbook
    except ImportError:  # pragma: no cover - dev extra not installed
        return {"skipped": "PyPI growthbook not installed"}
    sides = Sides()
    agree = sum(sides.ours(i) == sides.theirs_new(i) for i in range(200))
    result: dict[str, Any] = {
        "growthbook_version": getattr(growthbook, "__version__", "?"),
        "agreement_of_200_visitors": agree,
        "per_evaluation": interleaved(sides),
    }
    if instructions:
        result["callgrind"] = instruction_counts()
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["--calls"]:
        _calls(sys.argv[2], int(sys.argv[3]))
    else:
        print(json.dumps(comparison("--instructions" in sys.argv), indent=2))
