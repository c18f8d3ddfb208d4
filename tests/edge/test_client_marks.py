"""What the edge writes into pages for the page client, and what its beacon makes of the
client's events (issue 10: defects 3, 4, 10 and the vitals), in-process (tests/edge/local.py);
the same through a real browser is tests/e2e/test_attribution.py and test_vitals.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from edge.io import Outgoing
from origin.store import SqliteStore
from tests.edge.local import Edge


def html_of(out: Outgoing) -> str:
    return str(out.page.handle)  # type: ignore[union-attr]


def beacon(edge: Edge, *items: dict[str, Any]) -> dict[str, Any]:
    reply = edge.request(
        "/_edgepick/events", method="POST", body=json.dumps({"events": items}).encode()
    )
    answer: dict[str, Any] = json.loads(reply.body)  # type: ignore[arg-type]
    return answer


def test_page_level_decision_and_async_defaults_are_written_into_the_page(
    fixture_blob: bytes,
) -> None:
    edge = Edge(fixture_blob)
    html = html_of(edge.request("/"))
    landing = next(e for e in edge.exposures() if e["slot"] == "landing")
    meta = f'<meta name="edgepick-decision" content="{landing["id"]}" data-edgepick-slot="landing">'
    assert meta in html.split("</head>")[0]
    recs = re.search(r'<div data-edgepick-slot="recs" data-edgepick-async>(.*?)</div>', html, re.S)
    assert recs is not None
    assert recs.group(1).endswith(
        "<template data-edgepick-default><ul class='recs'><li>Trail Runner 4</li>"
        "<li>Summit Shell</li><li>Flow Mat</li></ul></template>"
    )
    category = html_of(edge.request("/c/running"))  # no page-level slot on this path
    assert 'name="edgepick-decision"' not in category and "data-edgepick-default" in category


def test_previews_get_no_client_marks(fixture_blob: bytes) -> None:
    from core import preview

    token = preview.encode(preview.Preview(2_000_000_000, {}, {}), b"preview-secret")
    html = html_of(Edge(fixture_blob).request(f"/?edgepick_preview={token}"))
    assert "data-edgepick-default" not in html and 'name="edgepick-decision"' not in html


def test_beacon_outcomes_and_vitals_reach_the_store_attributed(
    fixture_blob: bytes, tmp_path: Path
) -> None:
    """The loop in-process: pages and beacons through the handler, what it shipped stored, the
    store's attribution read back (a landing decision credited by a later purchase; two
    purchases; a replay; vitals per slot)."""
    edge = Edge(fixture_blob)
    edge.request("/")
    hero = next(e["id"] for e in edge.exposures() if e["slot"] == "hero")
    edge.request("/c/running")
    answers = [
        beacon(edge, {"type": "conversion", "value": 40, "id": "buy1"}),
        beacon(edge, {"type": "conversion", "value": 75, "id": "buy2"}),
        beacon(edge, {"type": "conversion", "value": 75, "id": "buy2"}),  # a replay
        beacon(edge, {"type": "conversion", "decision": hero, "value": 75, "id": "buy2"}),
        beacon(
            edge,
            {
                "type": "vitals",
                "id": "page-1",
                "path": "/",
                "decisions": [hero, "forged-0"],
                "lcp": 1234.5,
                "cls": float("nan"),  # JSON null from a browser; NaN from anything else
            },
        ),
    ]
    assert [a["accepted"] for a in answers] == [1, 1, 1, 1, 1], answers
    store = SqliteStore(tmp_path / "e.db")
    store.append(edge.shipped())
    rows = {j.exposure["slot"]: j for j in store.joined(30 * 60_000, 24 * 3_600_000)}
    assert {"landing", "hero", "headline"} <= set(rows)
    assert all((j.conversions, j.value) == (2, 115.0) for j in rows.values()), rows
    (vitals,) = store.vitals()
    assert vitals["decisions"] == [hero] and vitals["lcp"] == 1234.5 and "cls" not in vitals
    assert [r["slot"] for r in store.vitals_by_decision()] == ["hero"]
