"""``edgepick simulate``: the real engine against synthetic visitors with known click rates.

Visitors come from :mod:`origin.population`: each has an interest, a device, an arrival channel
and maybe an abandoned cart, and browses pages of its interest before the home page, so the
edge's own features (``core.features``: category affinity, device, funnel stage, ...) carry the
signal. Its click probability for a variant is the ground truth :func:`truth`, so the oracle
(the best eligible variant for each visitor) is known exactly.

**Regret experiment** (:func:`run`). One slot of the site (``hero`` of ``fixtures/site.toml``,
rules removed, authored scores and weights reset so no policy starts with prior knowledge) is
run under each policy kind for ``rounds`` batches of ``batch`` visitors:

* ``fixed``: a uniform split (never learns);
* ``thompson``: after every batch the origin learner (``origin.learn``: Beta posteriors ->
  P(best) weights) is re-fitted on all rows so far and the site is re-compiled;
* ``linear``: the same, with per-arm ridge models over the slot's features, explored by
  ``squarecb`` (inverse-gap weighting with a learned per-arm gamma that grows with the arm's
  data; ``SimConfig.exploration``, ``--exploration softmax`` for the slot's authored softmax)
  and the slot's floor.

``truth`` picks the world: ``contextual`` (:func:`truth`, who wants what depends on the
visitor) or ``context-free`` (:func:`flat_truth`, one best variant for everyone, where a
contextual policy's features are noise). :func:`run_seeds` repeats the experiment over seeds
and reports each figure's mean and spread; every round also records the served policy's exact
expected CTR (``sum_a pi(a | x) mu(x, a)``, no draw noise) against the oracle's.

Every decision is ``core.decide.decide`` on an ``Engine`` decoded from the re-compiled snapshot
bytes, i.e. exactly what the edge runs; exposures are ``core.events.exposure`` events and become
training rows through ``origin.training`` and ``origin.aggregates`` (merged batch by batch).
All three policies see the same visitors, the same draws and the same click uniforms (common
random numbers). The cumulative (pseudo-)regret after ``T`` decisions is

    R_T = sum_{t <= T} [ max_{a in E_t} mu(x_t, a) - mu(x_t, a_t) ]

with ``mu`` the ground-truth click probability and ``E_t`` the eligible variants.

**Site loop** (:func:`populate`). The whole fixture site (all slots, rules, holdout) is served
hour by hour from the registry's current snapshot, events go to an event store, and after each
hour the real scheduled job (``origin.sync.run_round``) learns, compiles and publishes. This
fills a store and a registry for ``edgepick report`` and ``edgepick evaluate``.
"""

from __future__ import annotations

import copy
import json
import math
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from math import fsum
from pathlib import Path
from typing import Any

import numpy as np

from compile import defaults
from compile.site import compile_site, load_model, load_toml
from core.decide import decide
from core.engine import Engine
from core.events import exposure
from core.features import RequestContext, VisitorState, record_page_view
from core.model import Lifecycle, Signals, Site, Variant
from core.snapshot import encode_snapshot
from origin.aggregates import Aggregates, aggregate
from origin.learn import LearnConfig, learn, widths
from origin.population import SimVisitor, click_probability, population
from origin.store import EventStore, Joined
from origin.training import Reward, rows_from

FIXTURE_SITE = defaults.path("site.toml")
FIXTURE_MODEL = defaults.path("model.json")
POLICIES = ("fixed", "thompson", "linear")
START_MS = 1_790_000_000_000 - (1_790_000_000_000 % 3_600_000)  # an hour boundary

# Context-free appeal of variants whose slots do not depend on the visitor (headline, CTA,
# promo, landing), added to population.click_probability so those bandits have a best arm.
# The hero and recs variants get none: their structure is population.py's, unchanged.
APPEAL: dict[str, float] = {
    "hl-classic": 0.01,
    "hl-free-returns": 0.02,
    "hl-fast-shipping": 0.04,
    "hl-sustainability": 0.0,
    "hl-members": 0.005,
    "cta-shop-now": 0.02,
    "cta-explore": 0.01,
    "cta-find-yours": 0.03,
    "cta-deals": 0.015,
    "promo-free-shipping": 0.03,
    "promo-member-code": 0.015,
    "promo-price-match": 0.005,
    "home-outdoor": 0.01,
    "home-deals": 0.02,
}


def truth(visitor: SimVisitor, variant: Variant) -> float:
    """Ground-truth click probability: ``population.click_probability`` plus ``APPEAL``."""
    return min(click_probability(visitor, variant) + APPEAL.get(variant.id, 0.0), 1.0)


# The context-free world (``--truth context-free``): every visitor clicks a hero variant with the
# same probability, so the best policy is one fixed variant and a contextual model's features
# are noise. Rates span the contextual world's range (best 8%, next 7%: a small top gap).
FLAT: dict[str, float] = {
    "hero-brand": 0.02,
    "hero-running": 0.08,
    "hero-hiking": 0.07,
    "hero-yoga": 0.05,
    "hero-price-drop": 0.04,
    "hero-comeback": 0.03,
    "hero-mobile-app": 0.025,
}
TRUTHS = ("contextual", "context-free")


def flat_truth(visitor: SimVisitor, variant: Variant) -> float:
    """The context-free ground truth: ``FLAT`` by variant (0.03 for others), whoever visits."""
    return FLAT.get(variant.id, 0.03)


def visit(
    visitor: SimVisitor, signals: Signals, now: int, seed: int, countries: Sequence[str] = ("US",)
) -> tuple[VisitorState, RequestContext]:
    """The visitor's cookie state after browsing its pages, and the home-page request context.

    Context details that carry no signal (country, referrer, hour, weekday) are drawn from a
    generator seeded by (seed, visitor), so they are reproducible.
    """
    rng = random.Random(f"{seed}:{visitor.visitor_id}")
    state = VisitorState(visitor.visitor_id)
    pages = visitor.browsing()
    t = now - 60 * len(pages)
    for page in pages:
        state = record_page_view(state, t, page, signals)
        t += 60
    state = record_page_view(state, now, "/", signals)
    context = RequestContext(
        path="/",
        device=visitor.device,
        country=rng.choice(list(countries)),
        referrer=rng.choice(("direct", "search", "social", "email")),
        utm_source=visitor.utm_source,
        hour=rng.randrange(24),
        weekday=rng.randrange(7),
    )
    return state, context


# ------------------------------------------------------------------ the regret experiment


@dataclass(frozen=True, slots=True)
class SimConfig:
    rounds: int = 40
    batch: int = 250
    seed: int = 0
    slot: str = "hero"
    policies: tuple[str, ...] = POLICIES
    config: Path = FIXTURE_SITE
    draws: int = 2000  # Monte Carlo samples for P(best) in the learner
    truth: str = "contextual"  # or "context-free" (``flat_truth``)
    # the linear slot's exploration in the regret experiment ("" = as the config authors it):
    # squarecb, whose exploration decays with the evidence (core.policies, origin.learn)
    exploration: str = "squarecb"
    # the learner's prior strength toward the population model: chosen by the evidence (the
    # default) or the fixed ridge (False: the learner as it was before squarecb)
    empirical_bayes: bool = True


@dataclass
class PolicyRun:
    kind: str
    decisions: list[int] = field(default_factory=list)  # cumulative, per round
    regret: list[float] = field(default_factory=list)  # cumulative, per round
    clicks: list[int] = field(default_factory=list)  # cumulative, per round
    expected: list[float] = field(default_factory=list)  # cumulative expected clicks
    snapshots: list[str] = field(default_factory=list)
    # per round: the served policy's exact expected CTR (sum_a pi(a|x) mu(x, a) over the round's
    # visitors, no draw noise), the oracle's over the same visitors, and the greedy model's
    served: list[float] = field(default_factory=list)
    oracle: list[float] = field(default_factory=list)
    greedy: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        n = self.decisions[-1] if self.decisions else 0
        return {
            "decisions": n,
            "cumulative_regret": round(self.regret[-1], 4) if self.regret else 0.0,
            "regret_per_decision": round(self.regret[-1] / n, 5) if n else 0.0,
            "ctr_expected": round(self.expected[-1] / n, 5) if n else 0.0,
            "ctr_observed": round(self.clicks[-1] / n, 5) if n else 0.0,
            "snapshots": len(set(self.snapshots)),
            "last_round_regret_per_decision": round(
                (self.regret[-1] - (self.regret[-2] if len(self.regret) > 1 else 0.0))
                / (n - (self.decisions[-2] if len(self.decisions) > 1 else 0)),
                5,
            )
            if n
            else 0.0,
            # the last round's served policy against the oracle on the same visitors
            "served_ctr_last_round": round(self.served[-1], 5) if self.served else 0.0,
            "oracle_ctr_last_round": round(self.oracle[-1], 5) if self.oracle else 0.0,
            "greedy_ctr_last_round": round(self.greedy[-1], 5) if self.greedy else 0.0,
            "served_share_of_oracle": round(self.served[-1] / self.oracle[-1], 4)
            if self.oracle and self.oracle[-1] > 0
            else 0.0,
        }


def slot_config(
    base: Mapping[str, Any], slot: str, kind: str, exploration: str = ""
) -> dict[str, Any]:
    """The site config reduced to one slot run under ``kind``, with no prior knowledge.

    Rules, holdout, authored scores and authored weights are removed, so every policy starts
    from the uniform split; a linear slot keeps its features and exploration settings (its
    exploration replaced by ``exploration`` when given).
    """
    config = copy.deepcopy(dict(base))
    config["site"] = {**config["site"], "holdout": 0.0}
    table = dict(config["slots"][slot])
    table.pop("rules", None)
    table.pop("paths", None)
    variants = []
    for v in table["variants"]:
        v = {k: val for k, val in v.items() if k not in ("weight", "scores")}
        variants.append(v)
    table["variants"] = variants
    authored = dict(table.get("policy", {}))
    if kind == "fixed":
        table["policy"] = {"kind": "fixed", "seed": f"{slot}-simulation"}
    elif kind == "thompson":
        table["policy"] = {"kind": "thompson", "floor": authored.get("floor", 0.05)}
    elif kind == "linear":
        if authored.get("kind") != "linear":
            raise ValueError(f"slot {slot!r} has no linear policy (its features are needed)")
        if exploration:
            authored = {**authored, "exploration": exploration}
        table["policy"] = authored
    else:
        raise ValueError(f"unknown policy kind {kind!r} (known: {', '.join(POLICIES)})")
    config["slots"] = {slot: table}
    config.pop("model", None)
    return config


def _engine(site: Site, message: str) -> Engine:
    """Encode the site as a snapshot and decode it again, as the edge receives it."""
    return Engine.from_bytes(encode_snapshot(site, author="simulate", message=message))


def outcome_event(decision_id: str, visitor: str, ts: int, kind: str = "click") -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "id": f"{decision_id}:{kind}:sim",
        "ts": ts,
        "visitor": visitor,
        "decision": decision_id,
    }
    if kind == "conversion":
        event["value"] = 0.0
    return event


def run(config: SimConfig = SimConfig()) -> dict[str, Any]:
    """The regret experiment; returns a JSON-able result (see the module docstring)."""
    if config.truth not in TRUTHS:
        raise ValueError(f"unknown truth {config.truth!r} (known: {', '.join(TRUTHS)})")
    mu_of = truth if config.truth == "contextual" else flat_truth
    base = load_toml(config.config)
    configs = {
        kind: slot_config(base, config.slot, kind, config.exploration) for kind in config.policies
    }
    sites = {
        kind: compile_site(configs[kind], None, str(config.config)) for kind in config.policies
    }
    runs = {kind: PolicyRun(kind) for kind in config.policies}
    totals: dict[str, Aggregates] = {kind: Aggregates(widths(site)) for kind, site in sites.items()}
    engines = {kind: _engine(site, "round 0") for kind, site in sites.items()}
    rng = np.random.default_rng(config.seed)
    oracle_total = 0.0
    for r in range(config.rounds):
        visitors = population(config.batch, config.seed * 100_003 + r, prefix=f"r{r}")
        now = START_MS // 1000 + r * 3600
        states = [visit(v, sites[config.policies[0]].signals, now, config.seed) for v in visitors]
        uniforms = rng.random(len(visitors))  # common random numbers: one per visitor
        for kind in config.policies:
            engine, run_ = engines[kind], runs[kind]
            prepared = engine.slots[config.slot]
            joined: list[Joined] = []
            regret = clicks = expected = served = greedy = oracle = 0.0
            variants = prepared.slot.variants
            for n, (visitor, (state, context)) in enumerate(zip(visitors, states, strict=True)):
                (d,) = decide(engine, state, context, now, [config.slot])
                mus = [mu_of(visitor, v) for v in variants]
                best = max(mus[i] for i in prepared.active)
                mu = mus[d.arm]
                regret += best - mu
                expected += mu
                oracle += best
                served += fsum(p * m for p, m in zip(d.probabilities, mus, strict=True))
                top = max(range(len(mus)), key=d.probabilities.__getitem__)
                if d.scores:  # the model's own choice: the highest score among those served
                    top = max(
                        (i for i, p in enumerate(d.probabilities) if p > 0.0),
                        key=d.scores.__getitem__,
                    )
                greedy += mus[top]
                if kind == config.policies[0]:
                    oracle_total += best
                click = int(uniforms[n] < mu)
                clicks += click
                event = exposure(
                    d, visitor.visitor_id, engine.snapshot_id, now * 1000 + n, 0, context
                )
                joined.append(Joined(event, click, 0, 0.0))
            prev = len(run_.decisions) and run_.decisions[-1]
            run_.decisions.append(prev + len(visitors))
            run_.regret.append((run_.regret[-1] if run_.regret else 0.0) + regret)
            run_.clicks.append((run_.clicks[-1] if run_.clicks else 0) + int(clicks))
            run_.expected.append((run_.expected[-1] if run_.expected else 0.0) + expected)
            run_.snapshots.append(engine.snapshot_id)
            run_.served.append(served / len(visitors))
            run_.oracle.append(oracle / len(visitors))
            run_.greedy.append(greedy / len(visitors))
            if kind == "fixed":
                continue
            rows = list(rows_from(joined, Reward()))
            site = sites[kind]
            totals[kind] = totals[kind].merged(aggregate(rows, widths(site)))
            learn_config = LearnConfig(
                seed=config.seed + r, draws=config.draws, empirical_bayes=config.empirical_bayes
            )
            model = learn(site, totals[kind], learn_config)
            site = compile_site(configs[kind], model, str(config.config))
            engines[kind] = _engine(site, f"round {r + 1}")
    decisions = config.rounds * config.batch
    return {
        "config": {
            **asdict(config),
            "config": str(config.config),
            "policies": list(config.policies),
        },
        "oracle_ctr": round(oracle_total / decisions, 5) if decisions else 0.0,
        "policies": {
            kind: {
                **run_.summary(),
                "curve": {
                    "decisions": run_.decisions,
                    "regret": [round(x, 4) for x in run_.regret],
                    "clicks": run_.clicks,
                    "served_ctr": [round(x, 5) for x in run_.served],
                    "oracle_ctr": [round(x, 5) for x in run_.oracle],
                },
            }
            for kind, run_ in runs.items()
        },
    }


SPREAD_KEYS = (
    "cumulative_regret",
    "ctr_expected",
    "served_ctr_last_round",
    "greedy_ctr_last_round",
    "served_share_of_oracle",
)


def spread(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation, min and max (rounded for JSON)."""
    return {
        "mean": round(statistics.fmean(values), 5),
        "sd": round(statistics.stdev(values), 5) if len(values) > 1 else 0.0,
        "min": round(min(values), 5),
        "max": round(max(values), 5),
    }


def run_seeds(config: SimConfig, seeds: int) -> dict[str, Any]:
    """``run`` for seeds ``config.seed .. config.seed + seeds - 1``: each policy's summary
    figures as mean, spread (sd), min and max over the seeds, plus the regret ratio of
    ``linear`` to ``thompson`` per seed, and every seed's own summary."""
    results = [run(replace(config, seed=config.seed + k)) for k in range(seeds)]
    policies: dict[str, Any] = {}
    for kind in config.policies:
        runs_ = [r["policies"][kind] for r in results]
        policies[kind] = {key: spread([r[key] for r in runs_]) for key in SPREAD_KEYS}
    out: dict[str, Any] = {
        "config": {**results[0]["config"], "seed": config.seed, "seeds": seeds},
        "oracle_ctr": spread([r["oracle_ctr"] for r in results]),
        "policies": policies,
        "per_seed": [
            {
                "seed": r["config"]["seed"],
                "oracle_ctr": r["oracle_ctr"],
                "policies": {
                    k: {key: v[key] for key in ("cumulative_regret", *SPREAD_KEYS[1:])}
                    for k, v in r["policies"].items()
                },
            }
            for r in results
        ],
    }
    if "linear" in config.policies and "thompson" in config.policies:
        out["linear_over_thompson_regret"] = spread(
            [
                r["policies"]["linear"]["cumulative_regret"]
                / max(r["policies"]["thompson"]["cumulative_regret"], 1e-9)
                for r in results
            ]
        )
    return out


def describe_seeds(result: Mapping[str, Any]) -> str:
    """The multi-seed summary as text: mean +- sd [min, max] per policy."""
    cfg = result["config"]
    o = result["oracle_ctr"]
    lines = [
        f"{cfg['seeds']} seeds ({cfg['seed']}..{cfg['seed'] + cfg['seeds'] - 1}), truth "
        f"{cfg['truth']}, {cfg['rounds']} rounds x {cfg['batch']} visitors; oracle CTR "
        f"{o['mean']:.4f} +- {o['sd']:.4f}; mean +- sd [min, max]",
    ]

    def cell(d: Mapping[str, float], digits: int = 4) -> str:
        mean, sd, lo, hi = (f"{d[k]:.{digits}f}" for k in ("mean", "sd", "min", "max"))
        return f"{mean} +- {sd} [{lo}, {hi}]"

    for kind, d in result["policies"].items():
        lines.append(f"{kind:10} regret {cell(d['cumulative_regret'], 1)}")
        lines.append(f"{'':10} CTR    {cell(d['ctr_expected'])}")
        lines.append(
            f"{'':10} last round: served/oracle {cell(d['served_share_of_oracle'], 3)}, "
            f"greedy CTR {d['greedy_ctr_last_round']['mean']:.4f}"
        )
    ratio = result.get("linear_over_thompson_regret")
    if ratio:
        lines.append(f"linear regret / thompson regret: {cell(ratio, 2)}")
    return "\n".join(lines)


def plot_regret(result: Mapping[str, Any], path: Path | None = None) -> bytes:
    """Cumulative regret curves as PNG bytes (also written to ``path`` when given)."""
    from origin.plots import figure, png

    fig, ax = figure(7.0, 4.0)
    for kind, data in result["policies"].items():
        curve = data["curve"]
        ax.plot([0, *curve["decisions"]], [0.0, *curve["regret"]], label=kind, linewidth=2)
    cfg = result["config"]
    ax.set_xlabel("decisions")
    ax.set_ylabel("cumulative regret (expected clicks lost)")
    ax.set_title(f"slot {cfg['slot']}: regret against the oracle (seed {cfg['seed']})")
    ax.legend()
    data = png(fig)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return data


def describe(result: Mapping[str, Any]) -> str:
    lines = [
        f"oracle CTR {result['oracle_ctr']:.4f} over "
        f"{result['config']['rounds']} rounds x {result['config']['batch']} visitors",
        f"{'policy':10} {'regret':>10} {'per decision':>13} {'last round':>11} {'CTR':>8} "
        f"{'served/oracle, last round':>26}",
    ]
    for kind, d in result["policies"].items():
        lines.append(
            f"{kind:10} {d['cumulative_regret']:10.1f} {d['regret_per_decision']:13.4f} "
            f"{d['last_round_regret_per_decision']:11.4f} {d['ctr_expected']:8.4f} "
            f"{d['served_share_of_oracle']:26.3f}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------ the site loop (for reports)


@dataclass(frozen=True, slots=True)
class LoopConfig:
    hours: int = 36
    visitors: int = 120  # per hour, on average (a daily cycle of +-25% around it)
    seed: int = 0
    config: Path = FIXTURE_SITE
    model: Path | None = FIXTURE_MODEL
    outage_hour: int | None = 30  # clicks are not delivered that hour (a broken beacon)
    start_ms: int = START_MS
    countries: tuple[str, ...] = ("US", "US", "US", "GB", "CA", "DE", "FR")


def populate(store: EventStore, registry: Any, config: LoopConfig = LoopConfig()) -> list[Any]:
    """Serve the whole site hour by hour and run the real sync job after each hour.

    Returns the ``origin.sync.RoundResult`` of every hour. The first snapshot (the config and
    base model as authored) is published before the first hour.
    """
    from origin.publish import publish
    from origin.registry import Registry
    from origin.sync import SyncJob, run_round

    assert isinstance(registry, Registry)
    base = load_model(config.model) if config.model else None
    if registry.current() is None:
        site = compile_site(load_toml(config.config), base, str(config.config))
        blob = encode_snapshot(
            site, created=config.start_ms // 1000, author="simulate", message="initial"
        )
        publish(blob, [], registry, author="simulate", note="initial")
    rng = np.random.default_rng(config.seed)
    results = []
    for hour in range(config.hours):
        current = registry.current_blob()
        assert current is not None
        engine = Engine.from_bytes(current)
        start = config.start_ms + hour * 3_600_000
        count = max(1, round(config.visitors * (1 + 0.25 * math.sin(2 * math.pi * hour / 24))))
        visitors = population(count, config.seed * 100_003 + hour, prefix=f"h{hour}")
        events: list[dict[str, Any]] = []
        for n, visitor in enumerate(visitors):
            ts = start + n * (3_600_000 // (count + 1))
            now = ts // 1000
            state, context = visit(visitor, engine.site.signals, now, config.seed, config.countries)
            began = time.perf_counter_ns()
            decisions = decide(engine, state, context, now)
            decision_us = max(1, (time.perf_counter_ns() - began) // 1000)
            for d in decisions:
                event = exposure(
                    d, visitor.visitor_id, engine.snapshot_id, ts, decision_us, context
                )
                event["path"] = context.path
                events.append(event)
                variant = engine.slots[d.slot].slot.variants[d.arm]
                if variant.lifecycle is not Lifecycle.ACTIVE:
                    continue
                if rng.random() < truth(visitor, variant) and hour != config.outage_hour:
                    events.append(outcome_event(d.decision_id, visitor.visitor_id, ts + 4000))
                    if rng.random() < 0.2:
                        conversion = outcome_event(
                            d.decision_id, visitor.visitor_id, ts + 60_000, "conversion"
                        )
                        conversion["value"] = round(float(rng.uniform(20, 120)), 2)
                        events.append(conversion)
        store.append(events)
        end = start + 3_600_000
        job = SyncJob(
            config=config.config,
            store=store,
            registry=registry,
            targets=[],
            model=config.model,
            author="simulate",
            clock=_clock(end / 1000),
        )
        results.append(run_round(job))
    return results


def _clock(seconds: float) -> Callable[[], float]:
    """A clock stopped at ``seconds`` (the sync job's time at the end of a simulated hour)."""
    return lambda: seconds


def save(result: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
