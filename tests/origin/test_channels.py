from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from core.events import SIGNATURE_HEADER, page_view, problem, sign
from origin.channels import Decider
from origin.collector import Service, create_app
from origin.registry import Registry
from origin.store import SqliteStore
from tests.origin.helpers import NOW_MS, SECRET, identify

DAY = 86_400_000


def post(client: TestClient, payload: Any, secret: bytes = SECRET) -> Any:
    body = json.dumps(payload).encode()
    return client.post("/v1/decide", content=body, headers={SIGNATURE_HEADER: sign(body, secret)})


def setup(tmp_path: Path, blob: bytes | None) -> tuple[TestClient, SqliteStore]:
    store = SqliteStore(tmp_path / "e.db")
    registry = Registry(tmp_path / "reg")
    if blob is not None:
        registry.set_current(registry.add(blob).id)
    decider = Decider(registry, store, clock=lambda: NOW_MS / 1000)
    return TestClient(create_app(Service(store, SECRET, decider))), store


def test_decide_for_a_visitor_logs_exposures_like_the_edge(
    tmp_path: Path, fixture_blob: bytes, engine: Any
) -> None:
    client, store = setup(tmp_path, fixture_blob)
    response = post(
        client,
        {
            "visitor": "v-42",
            "context": {"device": "mobile", "country": "US"},
            "slots": ["hero", "headline"],
        },
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["snapshot"] == engine.snapshot_id
    assert [d["slot"] for d in answer["decisions"]] == ["hero", "headline"]
    logged = {e["id"]: e for e in store.exposures()}
    for d in answer["decisions"]:
        event = logged[d["decision_id"]]
        assert problem(event) is None
        assert event["propensity"] == d["propensity"] and event["policy"] == d["policy"]
        assert event["variant"] == d["variant"] and event["device"] == "mobile"
        assert d["content"]
    hero = next(e for e in logged.values() if e["slot"] == "hero")
    assert len(hero["features"]) == 15  # the hero policy's feature vector, as the edge logs it
    again = post(
        client, {"visitor": "v-42", "context": {"device": "mobile", "country": "US"}}
    ).json()
    assert {d["decision_id"] for d in again["decisions"]}.isdisjoint(logged)  # a new decision


def test_decide_for_a_user_uses_the_stitched_profile(tmp_path: Path, fixture_blob: bytes) -> None:
    client, store = setup(tmp_path, fixture_blob)
    store.append(
        [  # a page view on each of five days, as the edge sends them
            page_view(f"pv{i}", "laptop", NOW_MS - (5 - i) * DAY, "/c/running", "running")
            for i in range(5)
        ]
        + [identify("laptop", "u-7", ts=NOW_MS - 1000)]
    )
    answer = post(client, {"user": "u-7", "slots": ["hero"]}).json()
    (decision,) = answer["decisions"]
    assert answer["user"] == "u-7" and answer["visitor"] == "laptop"
    event = next(e for e in store.exposures() if e["id"] == decision["decision_id"])
    assert event["user"] == "u-7"
    # five visits on five days -> the 'visits' feature (log1p) the decision used
    visits_index = 2  # hero features: bias, new_visitor, visits, ...
    assert math.isclose(event["features"][visits_index], math.log1p(5))


def test_decide_refuses_bad_requests(tmp_path: Path, fixture_blob: bytes) -> None:
    client, store = setup(tmp_path, fixture_blob)
    assert post(client, {"visitor": "v"}, secret=b"wrong").status_code == 401
    response = post(client, {"visitor": "v", "context": {"device": 3}})
    assert response.status_code == 400 and response.json()["field"] == "context.device"
    response = post(client, {"visitor": "v", "context": {"planet": "mars"}})
    assert response.status_code == 400 and "context.planet: unknown" in response.json()["error"]
    assert post(client, {"context": {}}).status_code == 400
    assert post(client, {"visitor": "v", "slots": "hero"}).json()["field"] == "slots"
    assert store.count("exposure") == 0
    empty, _ = setup(tmp_path / "none", None)
    response = post(empty, {"visitor": "v"})
    assert response.status_code == 503 and "no snapshot" in response.json()["error"]


def test_decide_without_consent_reads_no_profile_and_logs_nothing(
    tmp_path: Path, fixture_blob: bytes
) -> None:
    client, store = setup(tmp_path, fixture_blob)
    store.append(
        [page_view(f"pv{i}", "laptop", NOW_MS - i * DAY, "/c/running", "running") for i in range(5)]
        + [identify("laptop", "u-7", ts=NOW_MS - 1000)]
    )
    before = len(list(store.exposures()))
    answer = post(client, {"user": "u-7", "slots": ["hero"], "context": {"consent": False}}).json()
    assert answer["decisions"] and answer["visitor"] == "u-7"  # not the stitched visitor
    assert len(list(store.exposures())) == before
    with_consent = post(client, {"user": "u-7", "slots": ["hero"]}).json()
    assert with_consent["visitor"] == "laptop"
    assert len(list(store.exposures())) == before + 1
