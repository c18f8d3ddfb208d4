from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from core.events import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, SIGNATURE_HEADER, sign
from origin.collector import Service, create_app
from origin.store import SqliteStore
from tests.origin.helpers import SECRET, exposure, outcome, signed


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "events.db")


@pytest.fixture
def client(store: SqliteStore) -> TestClient:
    return TestClient(create_app(Service(store, SECRET)))


def test_accepts_and_counts_duplicates_once(client: TestClient, store: SqliteStore) -> None:
    body, headers = signed([exposure(1), exposure(2), outcome("d1-0")])
    first = client.post("/v1/events", content=body, headers=headers)
    assert first.status_code == 200 and first.json() == {"accepted": 3, "duplicates": 0}
    again = client.post("/v1/events", content=body, headers=headers)
    assert again.json() == {"accepted": 0, "duplicates": 3}
    assert store.count("exposure") == 2 and store.count("click") == 1
    assert client.get("/health").json()["counters"] == {"accepted": 3, "duplicates": 3}


def test_refuses_unauthenticated(client: TestClient, store: SqliteStore) -> None:
    body, headers = signed([exposure(1)])
    missing = client.post("/v1/events", content=body)
    assert missing.status_code == 401 and SIGNATURE_HEADER in missing.json()["error"]
    wrong = client.post("/v1/events", content=body, headers={SIGNATURE_HEADER: sign(body, b"x")})
    assert wrong.status_code == 401 and "does not match" in wrong.json()["error"]
    tampered = client.post("/v1/events", content=body.replace(b"v-1", b"v-2"), headers=headers)
    assert tampered.status_code == 401
    assert store.count("exposure") == 0


def test_refuses_oversized(client: TestClient, store: SqliteStore) -> None:
    too_many = [exposure(i) for i in range(MAX_BATCH_EVENTS + 1)]
    body, headers = signed(too_many)
    assert len(body) < MAX_BATCH_BYTES
    response = client.post("/v1/events", content=body, headers=headers)
    assert (
        response.status_code == 413 and f"over the {MAX_BATCH_EVENTS}" in response.json()["error"]
    )
    padded = [{**exposure(1), "pad": "x" * MAX_BATCH_BYTES}]
    body, headers = signed(padded)
    response = client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 413 and "byte limit" in response.json()["error"]
    assert store.count("exposure") == 0


def test_refuses_malformed_json(client: TestClient) -> None:
    body = b'{"events": [ '
    response = client.post(
        "/v1/events", content=body, headers={SIGNATURE_HEADER: sign(body, SECRET)}
    )
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]
    body = json.dumps({"evts": []}).encode()
    response = client.post(
        "/v1/events", content=body, headers={SIGNATURE_HEADER: sign(body, SECRET)}
    )
    assert response.status_code == 400 and '{"events"' in response.json()["error"]


def test_one_invalid_event_refuses_the_whole_batch(client: TestClient, store: SqliteStore) -> None:
    bad = {**exposure(3), "propensity": 1.5}
    body, headers = signed([exposure(1), exposure(2), bad])
    response = client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 400
    error = response.json()
    assert error["index"] == 2 and error["field"] == "propensity"
    assert (
        error["error"].startswith("events[2].propensity:")
        and "nothing was stored" in error["error"]
    )
    assert error["event_id"] == "d3-0"
    assert store.count("exposure") == 0
    body, headers = signed([exposure(1), {"type": "click", "id": "c", "visitor": "v", "ts": 1}])
    error = client.post("/v1/events", content=body, headers=headers).json()
    assert error["index"] == 1 and error["field"] == "decision"


def test_a_rotation_accepts_the_previous_secret_until_it_is_dropped(store: SqliteStore) -> None:
    old, new = SECRET, b"the-new-secret-0123456789"
    rotating = TestClient(create_app(Service(store, new, previous=(old,))))
    for key, n in ((old, 1), (new, 2)):
        body, headers = signed([exposure(n)], key)
        reply = rotating.post("/v1/events", content=body, headers=headers)
        assert reply.status_code == 200 and reply.json()["accepted"] == 1
    rotated = TestClient(create_app(Service(store, new)))
    body, headers = signed([exposure(3)], old)
    assert rotated.post("/v1/events", content=body, headers=headers).status_code == 401
    assert store.count("exposure") == 2


def test_previous_secrets_from_the_command_line_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from argparse import Namespace

    from cli.origin_commands import _previous_secrets

    monkeypatch.setenv("EDGEPICK_PREVIOUS_SECRETS", "a,b\n,")  # as given, like the secret
    assert _previous_secrets(Namespace(previous_secret=None)) == (b"a", b"b\n")
    assert _previous_secrets(Namespace(previous_secret=["c"])) == (b"c",)
    monkeypatch.delenv("EDGEPICK_PREVIOUS_SECRETS")
    assert _previous_secrets(Namespace(previous_secret=None)) == ()


def test_beacon_outcomes_and_vitals_from_the_edge_are_stored(
    client: TestClient, store: SqliteStore
) -> None:
    """What the edge's beacon parser emits (two purchases on one decision, a visitor-level
    conversion, a page's vitals) is accepted, stored, and a resend changes nothing."""
    from core.events import encode_batch, parse_beacon

    page = {
        "events": [
            {"type": "conversion", "decision": "d1-0", "value": 40, "id": "o1"},
            {"type": "conversion", "decision": "d1-0", "value": 75, "id": "o2"},
            {"type": "conversion", "value": 12.5, "id": "o3"},
            {"type": "vitals", "id": "pg1", "path": "/", "decisions": ["d1-0"], "lcp": 950.5},
        ]
    }
    kept, errors = parse_beacon(
        json.dumps(page).encode(), "v-1", 1_790_000_000_500, frozenset({"d1-0"})
    )
    assert errors == []
    body, headers = signed([exposure(1), *kept])
    first = client.post("/v1/events", content=body, headers=headers)
    assert first.json() == {"accepted": 5, "duplicates": 0}
    assert client.post("/v1/events", content=body, headers=headers).json()["duplicates"] == 5
    assert store.count("conversion") == 3 and store.count("vitals") == 1
    (row,) = store.joined(60_000, 86_400_000)
    assert (row.conversions, row.value) == (3, 127.5)
    assert next(store.vitals())["lcp"] == 950.5
    assert encode_batch(kept)  # the edge's own encoding


def test_non_finite_numbers_refuse_the_batch(client: TestClient, store: SqliteStore) -> None:
    vitals = {
        "type": "vitals",
        "id": "v-1:vitals:p",
        "ts": 1_790_000_000_000,
        "visitor": "v-1",
        "path": "/",
    }
    body = json.dumps({"events": [exposure(1), {**vitals, "decisions": [], "lcp": float("inf")}]})
    headers = {SIGNATURE_HEADER: sign(body.encode(), SECRET)}
    response = client.post("/v1/events", content=body.encode(), headers=headers)
    assert response.status_code == 400 and response.json()["field"] == "lcp"
    assert store.count("exposure") == 0 and store.count("vitals") == 0
