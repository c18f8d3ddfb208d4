"""The Queues consumer (``edge.queue_consumer``) against the real collector (``edgepick serve``
on 127.0.0.1, its SQLite store): queued batches are stored, acked only once stored, retried
while the collector is away, and redelivery stores nothing twice. The batches are what the edge
handler queued. Under Pyodide with the production entry: tests/edge/test_pyodide.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from edge.delivery import DeliveryStats
from edge.queue_consumer import consume
from origin.store import SqliteStore
from tests.edge.local import Edge
from tests.origin.helpers import SECRET, free_port, start_server


@dataclass
class Queued:
    """A queued message as the runtime hands it over."""

    body: str
    outcome: list[str] = field(default_factory=list)

    def ack(self) -> None:
        self.outcome.append("ack")

    def retry(self) -> None:
        self.outcome.append("retry")


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = free_port()
    server = start_server(port, tmp_path / "events.db", tmp_path / "registry")
    try:
        yield port, tmp_path / "events.db"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def queued_batches(fixture_blob: bytes) -> list[str]:
    """What the edge handler sent to its producer for three page views (one batch each)."""
    edge = Edge(fixture_blob)
    for path in ("/", "/c/running", "/cart"):
        edge.request(path)
    return [body.decode() for _url, body, _headers in edge.io.shipped]


def poster(port: int) -> object:
    async def post(body: bytes, headers: Mapping[str, str]) -> int:
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{port}/v1/events"
            return (await client.post(url, content=body, headers=dict(headers))).status_code

    return post


def test_queued_batches_reach_the_store_once(
    fixture_blob: bytes, collector: tuple[int, Path]
) -> None:
    port, db = collector
    bodies = queued_batches(fixture_blob)
    messages = [Queued(b) for b in bodies] + [Queued("not json")]
    stats = DeliveryStats()
    asyncio.run(consume(messages, poster(port), SECRET, stats))  # type: ignore[arg-type]
    assert [m.outcome for m in messages] == [["ack"]] * 4
    sent = [e for b in bodies for e in json.loads(b)["events"]]
    store = SqliteStore(db)
    assert store.ids() == {e["id"] for e in sent} and stats.shipped == len(sent)
    assert store.count("page_view") == 3
    again = [Queued(b) for b in bodies]  # Queues delivers at least once: a redelivery
    asyncio.run(consume(again, poster(port), SECRET, stats))  # type: ignore[arg-type]
    assert all(m.outcome == ["ack"] for m in again) and len(store.ids()) == len(sent)


def test_a_collector_away_means_retry_later(fixture_blob: bytes, tmp_path: Path) -> None:
    messages = [Queued(b) for b in queued_batches(fixture_blob)]
    stats = DeliveryStats()
    asyncio.run(consume(messages, poster(free_port()), SECRET, stats))  # type: ignore[arg-type]
    assert [m.outcome for m in messages] == [["retry"]] * 3
    assert stats.shipped == 0 and stats.retried > 0 and "ConnectError" in stats.last_error


def test_a_refused_batch_is_acked_and_counted(
    fixture_blob: bytes, collector: tuple[int, Path]
) -> None:
    port, _db = collector
    messages = [Queued(b) for b in queued_batches(fixture_blob)]
    stats = DeliveryStats()
    asyncio.run(consume(messages, poster(port), b"wrong-secret", stats))  # type: ignore[arg-type]
    assert [m.outcome for m in messages] == [["ack"]] * 3  # 401: resending cannot help
    assert stats.dropped > 0 and stats.shipped == 0 and "401" in stats.last_error
