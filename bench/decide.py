"""Decision-core benchmark: prints one JSON document.

Measures microseconds per call (median and p99 over batches) for the full fixture page, one slot
per policy kind, the cookie round trip and snapshot decoding, and, in the same run, GrowthBook's
Python SDK evaluating an experiment behind 3 targeting rules against our equivalent slot
(``bench/vs_growthbook.py``; with ``--instructions``, also callgrind's instruction counts).
Run: ``make bench`` (or ``.venv/bin/python bench/decide.py [--instructions]``).
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

from bench import vs_growthbook  # noqa: E402
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
        "growthbook_comparison": vs_growthbook.comparison("--instructions" in sys.argv),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
