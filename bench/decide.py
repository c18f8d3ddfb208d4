"""Decision-core benchmark: prints one JSON document.

Measures microseconds per call (median and p99 over batches) for the full fixture page, one slot
per policy kind, the cookie round trip and snapshot decoding, and, in the same run, GrowthBook's
Python SDK evaluating an experiment behind 3 targeting rules against our equivalent slot.
Run: ``make bench`` (or ``.venv/bin/python bench/decide.py``).
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench.peer_work as work  # noqa: E402
from bench.peer_work import GB_CONDITIONS, GB_SEED, GB_VARIANTS  # noqa: E402
from bench.timing import measure  # noqa: E402
from compile.build import build_snapshot  # noqa: E402
from core import cookie  # noqa: E402
from core.cookie import Keyring  # noqa: E402
from core.decide import decide  # noqa: E402
from core.engine import Engine  # noqa: E402
from core.features import RequestContext, VisitorState  # noqa: E402
from core.snapshot import decode_snapshot  # noqa: E402

NOW = 1_790_000_000
RETURNING = VisitorState(
    "bench-visitor",
    visits=4,
    page_views=30,
    first_seen=NOW - 86400 * 30,
    last_seen=NOW - 7200,
    stage="consider",
    affinity=(("running", 5.0), ("deals", 1.0), ("hiking", 0.5)),
    flags=frozenset({"buyer"}),
)
CONTEXT = RequestContext(path="/", device="mobile", country="US", referrer="search", hour=19)


def visitor(i: int) -> VisitorState:
    return VisitorState(
        f"bench-{i}",
        4,
        RETURNING.first_seen,
        RETURNING.last_seen,
        0,
        RETURNING.stage,
        RETURNING.affinity,
        RETURNING.flags,
        "",
        30,
    )


def growthbook_comparison() -> dict[str, Any]:
    try:
        from growthbook import GrowthBook
    except ImportError:  # pragma: no cover - dev extra not installed
        return {"skipped": "PyPI growthbook not installed"}
    import growthbook as gb_module

    features = {
        "cta": {
            "defaultValue": "shop-now",
            "rules": [
                {"condition": GB_CONDITIONS[0], "force": "explore"},
                {"condition": GB_CONDITIONS[1], "force": "deals"},
                {
                    "condition": GB_CONDITIONS[2],
                    "key": GB_SEED,
                    "seed": GB_SEED,
                    "hashVersion": 2,
                    "variations": list(GB_VARIANTS),
                    "weights": [0.25] * 4,
                },
            ],
        }
    }
    # the visitors and context of bench/peer_work.py, so both benchmarks compare the same work
    engine = Engine.from_site(work.rules_site())
    attrs = {
        "country": "US",
        "device": "mobile",
        "visits": 4,
        "referrer": "search",
        "utmSource": "",
    }
    gb = GrowthBook(attributes={**attrs, "id": "x"}, features=features)

    def ours(i: int) -> None:  # with a request id, as the edge passes one
        decide(engine, work.visitor(i), work.CONTEXT, work.NOW, ("cta",), nonce=f"{i:016x}")

    def theirs_reused(i: int) -> None:
        gb.set_attributes({**attrs, "id": f"peer-{i}"})
        gb.eval_feature("cta")

    def theirs_per_request(i: int) -> None:
        GrowthBook(attributes={**attrs, "id": f"peer-{i}"}, features=features).eval_feature("cta")

    # same visitors -> same variant: the two engines agree on what they compute
    agree = sum(
        decide(engine, work.visitor(i), work.CONTEXT, work.NOW, ("cta",))[0].variant
        == GrowthBook(attributes={**attrs, "id": f"peer-{i}"}, features=features)
        .eval_feature("cta")
        .value
        for i in range(200)
    )
    ours_t = measure(ours)
    reused_t = measure(theirs_reused)
    fresh_t = measure(theirs_per_request, batches=100)
    return {
        "growthbook_version": getattr(gb_module, "__version__", "?"),
        "agreement_of_200_visitors": agree,
        "edgepick_decide_us": ours_t,
        "growthbook_eval_feature_reused_instance_us": reused_t,
        "growthbook_eval_feature_new_instance_us": fresh_t,
        "speedup_vs_reused_instance": round(reused_t["median_us"] / ours_t["median_us"], 1),
        "speedup_vs_new_instance": round(fresh_t["median_us"] / ours_t["median_us"], 1),
    }


def one_slot(engine: Engine, name: str) -> Callable[[int], Any]:
    return lambda i: decide(engine, visitor(i), CONTEXT, NOW, (name,))


def main() -> None:
    blob = build_snapshot(ROOT / "fixtures" / "site.toml", ROOT / "fixtures" / "model.json")
    engine = Engine.from_bytes(blob)
    keys = Keyring("k1", {"k1": b"bench-secret-0123456789abcdef"})
    encoded = cookie.encode(RETURNING, keys)
    fresh = VisitorState("fresh")
    slots = {s.name: type(s.policy).__name__ for s in engine.site.slots}
    result: dict[str, Any] = {
        "benchmark": "decide",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "fixture": {
            "slots": len(slots),
            "variants": sum(len(s.variants) for s in engine.site.slots),
            "snapshot_bytes": len(blob),
            "cookie_bytes": len(encoded),
        },
        "full_page_decide": measure(lambda i: decide(engine, visitor(i), CONTEXT, NOW)),
        "per_slot": {
            f"{name} ({kind})": measure(one_slot(engine, name)) for name, kind in slots.items()
        },
        "cookie_encode_decode": measure(
            lambda i: cookie.decode(cookie.encode(RETURNING, keys), keys, fresh)
        ),
        "cookie_decode": measure(lambda i: cookie.decode(encoded, keys, fresh)),
        "snapshot_decode": measure(lambda i: decode_snapshot(blob), batches=50, per_batch=10),
        "snapshot_decode_and_prepare": measure(
            lambda i: Engine.from_bytes(blob), batches=50, per_batch=10
        ),
        "growthbook_comparison": growthbook_comparison(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
