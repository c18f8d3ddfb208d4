"""edge.warmup: the request path run once at import, in memory, on the bundled snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from core.engine import Engine
from edge import precomputed, warmup
from edge.handler import handle
from edge.io import Outgoing
from tests.edge.local import Edge


def test_the_warm_up_serves_new_and_returning_visitors_without_errors(engine: Engine) -> None:
    served = warmup.warm(engine)
    paths = {"/", *(r.prefix for r in engine.site.signals.categories)}
    assert served == 2 * min(len(paths | {p for s in engine.site.slots for p in s.paths}), 8)
    assert served >= 4
    assert precomputed.TABLES.by_snapshot == {}  # the real first request loads its own


def test_the_warm_up_returns_a_cookie_to_its_returning_visitor(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real = handle

    async def spy(request: Any, *rest: Any) -> Outgoing:
        seen.append(request.headers.get("cookie", ""))
        out: Outgoing = await real(request, *rest)
        return out

    monkeypatch.setattr(warmup, "handle", spy)
    assert warmup.warm(engine) > 0
    assert seen[0] == "" and seen[1].startswith("ep=")  # the second visit is a returning one


def test_a_failing_warm_up_never_stops_the_import(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("decide broke")

    monkeypatch.setattr("edge.precomputed.decide_fresh", broken)
    assert warmup.warm(engine) == 0  # the handler failed open; the warm-up says so, no raise
    monkeypatch.setattr(warmup, "handle", broken)  # and one that raises past the handler
    assert warmup.warm(engine) == 0


def test_requests_after_a_warm_up_are_served_as_without_it(
    engine: Engine, fixture_blob: bytes
) -> None:
    def visit() -> list[tuple[str, str]]:
        edge = Edge(fixture_blob)
        edge.io.seed, edge.io.now = "same-visitor", 1_800_000_000_000
        edge.request("/", cf_connecting_ip="198.51.100.7", user_agent="Mozilla/5.0 (iPhone)")
        return sorted((e["slot"], e["variant"]) for e in edge.exposures())

    before = visit()
    warmup.warm(engine)
    assert visit() == before and before
