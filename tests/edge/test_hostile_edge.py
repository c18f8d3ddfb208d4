"""The hostile-edge corpus (tests/cases/hostile_edge.json) through the worker's own handler:
cookies, paths, headers and beacon bodies a visitor controls. Pages are always served, nothing
raises (the handler's error count stays 0), each request stays cheap, and whatever is shipped
passes the collector's checks (finite numbers, bounded fields)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.edge import local

CASES = json.loads((Path(__file__).parents[1] / "cases" / "hostile_edge.json").read_text())
BUDGET_S = 2.0  # generous for a loaded CI machine; a blow-up costs seconds to minutes


def expand(text: str) -> str:
    while "@REPEAT:" in text:
        head, _, rest = text.partition("@REPEAT:")
        char, _, rest = rest.partition(":")
        digits = "".join(c for c in rest[:6] if c.isdigit())
        text = head + char * int(digits) + rest[len(digits) :]
    return text


@pytest.fixture
def edge(fixture_blob: bytes) -> local.Edge:
    return local.Edge(fixture_blob)


def _served(edge: local.Edge, out: Any) -> None:
    assert out.status < 500 and edge.stats.errors == 0, edge.stats.last_error
    edge.shipped()  # every shipped event passes core.events.problem (the collector's check)


@pytest.mark.parametrize("value", CASES["cookies"], ids=range(len(CASES["cookies"])))
def test_hostile_cookies_are_a_fresh_visitor(edge: local.Edge, value: str) -> None:
    started = time.perf_counter()
    out = edge.request("/", keep=False, cookie=f"ep={expand(value)}")
    assert time.perf_counter() - started < BUDGET_S
    _served(edge, out)
    assert out.page is not None and "data-edgepick-decision" in out.page.handle


@pytest.mark.parametrize("path", CASES["paths"], ids=range(len(CASES["paths"])))
def test_hostile_paths_are_served(edge: local.Edge, path: str) -> None:
    started = time.perf_counter()
    out = edge.request(expand(path), keep=False)
    assert time.perf_counter() - started < BUDGET_S
    _served(edge, out)


@pytest.mark.parametrize("headers", CASES["headers"], ids=range(len(CASES["headers"])))
def test_hostile_headers_are_served(edge: local.Edge, headers: dict[str, str]) -> None:
    started = time.perf_counter()
    given: dict[str, Any] = {k.replace("-", "_"): expand(v) for k, v in headers.items()}
    out = edge.request("/", keep=False, **given)
    assert time.perf_counter() - started < BUDGET_S
    _served(edge, out)


@pytest.mark.parametrize("body", CASES["beacons"], ids=range(len(CASES["beacons"])))
def test_hostile_beacons_are_refused_with_reasons(edge: local.Edge, body: str) -> None:
    edge.request("/")  # a real visitor's cookie, so the body is what gets judged
    before = len(edge.shipped())
    out = edge.request("/_edgepick/events", method="POST", body=expand(body).encode())
    _served(edge, out)
    assert out.status in (202, 413, 429)
    answer = json.loads(out.body or b"{}")
    assert answer.get("accepted", 0) == 0 and (answer.get("errors") or answer.get("error"))
    assert len(edge.shipped()) == before  # nothing from a hostile body was shipped


def test_out_of_range_vitals_are_left_out_and_the_page_kept(edge: local.Edge) -> None:
    """Lenient where visitors send: a metric out of range is dropped, the rest of the event kept."""
    edge.request("/")
    body = {
        "events": [
            {"type": "vitals", "id": "p1", "path": "/", "lcp": -1, "cls": 1e308, "ttfb": 30.0}
        ]
    }
    out = edge.request("/_edgepick/events", method="POST", body=json.dumps(body).encode())
    assert json.loads(out.body)["accepted"] == 1  # type: ignore[arg-type]
    (vitals,) = [e for e in edge.shipped() if e["type"] == "vitals"]
    assert "lcp" not in vitals and "cls" not in vitals and vitals["ttfb"] == 30.0
