"""The hostile-event corpus (tests/cases/hostile_events.json) through the real collector: each
case patches an event the edge handler really emitted; every one is a 400 naming the field,
the batch stores nothing, and no case is a 500."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from core.events import SIGNATURE_HEADER, sign
from origin.collector import Service, create_app
from origin.store import SqliteStore
from tests.edge import local

CASES = json.loads((Path(__file__).parents[1] / "cases" / "hostile_events.json").read_text())
SECRET = b"hostile-secret"


@pytest.fixture(scope="module")
def emitted(fixture_blob: bytes) -> dict[str, dict[str, Any]]:
    """One event of each type, as the edge handler ships them (a page view, a click beacon)."""
    edge = local.Edge(fixture_blob)
    out = edge.request("/")
    assert out.page is not None
    found: dict[str, dict[str, Any]] = {}
    for _url, body, _headers in edge.io.shipped:
        for event in json.loads(body)["events"]:
            found.setdefault(event["type"], event)
    exposure = found["exposure"]
    found["conversion"] = {
        "type": "conversion",
        "id": f"{exposure['id']}:conversion:o1",
        "ts": exposure["ts"],
        "visitor": exposure["visitor"],
        "decision": exposure["id"],
        "value": 40.0,
    }
    return found


def _patched(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, str) and value.startswith("@LONG:"):
            value = "x" * int(value.split(":")[1])
        out[key] = value
    return out


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: c["name"])
def test_hostile_events_are_refused_naming_the_field(
    case: dict[str, Any], emitted: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "events.db")
    client = TestClient(create_app(Service(store, SECRET)))
    good = emitted["page_view"]
    batch = [good, _patched(emitted[case["base"]], case["set"])]
    body = json.dumps({"events": batch}, allow_nan=True).encode()
    answer = client.post("/v1/events", content=body, headers={SIGNATURE_HEADER: sign(body, SECRET)})
    assert answer.status_code == case["status"], answer.text
    assert answer.json()["field"] == case["field"] and answer.json()["index"] == 1
    assert list(store.page_views()) == []  # one bad event refuses the whole batch
    again = json.dumps({"events": [good]}).encode()
    ok = client.post("/v1/events", content=again, headers={SIGNATURE_HEADER: sign(again, SECRET)})
    assert ok.status_code == 200 and ok.json()["accepted"] == 1  # the sender can fix and resend
