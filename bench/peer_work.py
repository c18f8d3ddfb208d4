"""The edgepick side of the peer comparison: sites built from ``core.model`` and the timing loop.

Pure (stdlib + ``core``), so the very same workload runs in CPython and inside Pyodide
(``bench/peers.py`` runs both and sets them beside mabwiser, Vowpal Wabbit and GrowthBook).
"""

from __future__ import annotations

import random
from typing import Any

from bench.timing import measure
from core.decide import decide
from core.engine import Engine
from core.features import RequestContext, VisitorState
from core.model import (
    Audience,
    Exploration,
    FixedPolicy,
    Granularity,
    LinearArm,
    LinearPolicy,
    Rule,
    RuleAction,
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
CONTEXT = RequestContext(path="/", device="mobile", country="US", referrer="search", hour=19)
# the GrowthBook comparison: two force rules and an experiment behind a condition
GB_CONDITIONS: list[dict[str, Any]] = [
    {"country": {"$in": ["DE", "FR", "IT", "ES"]}},
    {"$and": [{"device": "mobile"}, {"visits": {"$gte": 10}}]},
    {"referrer": {"$in": ["search", "social"]}, "utmSource": {"$ne": "affiliate"}},
]
GB_VARIANTS = ("shop-now", "explore", "find-yours", "deals")
GB_SEED = "cta-exp"


def bandit_site(seed: int = 7) -> Site:
    """A 10-arm Thompson slot and a 10-arm x 20-feature linear slot."""
    rng = random.Random(seed)
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
    return Site("peers", (thompson, linear), epoch=1)


def rules_site() -> Site:
    """The GrowthBook-equivalent slot: force, force, the default for visitors outside the
    experiment's condition, then a 4-way split with the same seed. GrowthBook's feature
    (bench/vs_growthbook.FEATURES) serves its default when the experiment rule's condition
    fails; this slot forces the default variant for ``$not`` that condition, so both serve every
    visitor the same variant (checked per visitor by bench/edge_vs_js.py)."""
    variants = tuple(Variant(v, v) for v in GB_VARIANTS)
    rules = (
        Rule("a0", RuleAction.FORCE, ("explore",)),
        Rule("a1", RuleAction.FORCE, ("deals",)),
        Rule("outside", RuleAction.FORCE, ("shop-now",)),
    )
    slot = Slot(
        "cta", Granularity.ELEMENT, "shop-now", variants, FixedPolicy((0.25,) * 4, GB_SEED), rules
    )
    audiences = tuple(Audience(f"a{i}", c) for i, c in enumerate(GB_CONDITIONS))
    audiences += (Audience("outside", {"$not": GB_CONDITIONS[2]}),)
    return Site("bench", (slot,), audiences)


def mixed_visitors(count: int, seed: int = 3) -> list[dict[str, Any]]:
    """Realistic attribute documents: 16-hex ids, a mix of countries, devices, visit counts,
    referrers and UTM sources, so that the force rules, the experiment and the default all
    occur (about 55%, 20% and 25% on ``rules_site``)."""
    rng = random.Random(seed)
    return [
        {
            "id": f"{rng.getrandbits(64):016x}",
            "country": rng.choice(("US", "US", "GB", "DE", "FR", "CA", "IT", "ES", "BR")),
            "device": rng.choice(("desktop", "mobile", "mobile", "tablet")),
            "visits": rng.choice((1, 1, 2, 3, 5, 10, 12, 20)),
            "referrer": rng.choice(("direct", "search", "social", "email", "search")),
            "utmSource": rng.choice(("", "", "newsletter", "affiliate")),
        }
        for _ in range(count)
    ]


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


def edgepick_figures(batches: int = 200) -> dict[str, Any]:
    """Microseconds per ``decide()`` of one slot, with a request id as the edge passes one.

    Per evaluation: the visitor states and request ids are built before timing, as the peers'
    inputs are.
    """
    bandits = Engine.from_site(bandit_site())
    rules = Engine.from_site(rules_site())
    count = 1000
    states = [visitor(i) for i in range(count)]
    nonces = [f"{i:016x}" for i in range(count)]

    def timed(engine: Engine, slot: str) -> dict[str, float]:
        slots = (slot,)
        return measure(
            lambda i: decide(
                engine, states[i % count], CONTEXT, NOW, slots, nonce=nonces[i % count]
            ),
            batches=batches,
        )

    return {
        "thompson_decide_us": timed(bandits, "ts10"),
        "linear_decide_us": timed(bandits, "lin10"),
        "rules_experiment_decide_us": timed(rules, "cta"),
    }
