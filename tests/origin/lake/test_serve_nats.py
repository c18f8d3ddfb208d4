"""``edgepick serve --nats URL``: the origin service (collector + /v1/decide) publishing to
JetStream; a consumer moves the events into the store the decide API reads profiles from."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cli.origin_commands import serve_service
from core.events import SIGNATURE_HEADER, encode_batch, page_view, sign
from origin.collector import create_app
from origin.lake.stream import StreamedStore, consume
from origin.registry import Registry
from origin.store import SqliteStore
from tests.origin.helpers import NOW_MS, SECRET, exposure, identify
from tests.origin.lake.natsd import nats_server


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "nats").mkdir()
    with nats_server(tmp_path / "nats") as url:
        yield url


def _args(tmp_path: Path, nats: str | None) -> argparse.Namespace:
    return argparse.Namespace(
        store=str(tmp_path / "events.db"),
        registry=str(tmp_path / "reg"),
        secret=SECRET.decode(),
        previous_secret=None,
        nats=nats,
    )


def _signed(client: TestClient, path: str, body: bytes) -> Any:
    return client.post(path, content=body, headers={SIGNATURE_HEADER: sign(body, SECRET)})


def test_serve_with_nats_publishes_events_and_decisions(
    nats_url: str, tmp_path: Path, fixture_blob: bytes
) -> None:
    registry = Registry(tmp_path / "reg")
    registry.set_current(registry.add(fixture_blob).id)
    service = serve_service(_args(tmp_path, nats_url))
    assert isinstance(service.store, StreamedStore)
    store = SqliteStore(tmp_path / "events.db")
    events = [exposure(k, visitor="laptop", ts=NOW_MS + k) for k in range(5)]
    events += [page_view(f"pv{i}", "laptop", NOW_MS - i, "/c/running", "running") for i in range(3)]
    events.append(identify("laptop", "u-7", ts=NOW_MS - 1000))
    try:
        with TestClient(create_app(service)) as client:
            reply = _signed(client, "/v1/events", encode_batch(events))
            assert reply.status_code == 200 and reply.json() == {"accepted": 9, "duplicates": 0}
            assert store.ids() == set()  # acknowledged by JetStream, not yet in the store
            done = asyncio.run(consume(nats_url, store, stop=lambda c: c.events >= 9, idle=0.5))
            assert done.stored == 9 and store.ids() == {e["id"] for e in events}
            # /v1/decide reads the consumed profile from the store; its exposure goes out too
            body = json.dumps({"user": "u-7", "slots": ["hero"]}).encode()
            answer = _signed(client, "/v1/decide", body).json()
            assert answer["visitor"] == "laptop"  # the identify, read back from the store
            (decision,) = answer["decisions"]
            assert decision["decision_id"] not in store.ids()
            asyncio.run(consume(nats_url, store, stop=lambda c: c.events >= 1, idle=0.5))
            logged = {e["id"]: e for e in store.exposures()}
            assert logged[decision["decision_id"]]["user"] == "u-7"
    finally:
        service.store.close()


def test_serve_without_nats_writes_the_store(tmp_path: Path) -> None:
    service = serve_service(_args(tmp_path, None))
    assert isinstance(service.store, SqliteStore)
