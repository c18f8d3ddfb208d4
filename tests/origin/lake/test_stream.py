"""Events through NATS JetStream: a collector publishing, a consumer writing the hot buffer;
kill -9 of either loses no acknowledged event and stores none twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.events import SIGNATURE_HEADER, encode_batch, sign
from origin.lake.stream import Consumed, JetStreamSink, consume
from origin.store import SqliteStore
from tests.origin.helpers import NOW_MS, ROOT, SECRET, exposure, outcome
from tests.origin.lake.natsd import free_port, nats_server, wait_port

EDGEPICK = [sys.executable, "-m", "cli.main"]


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    with nats_server(tmp_path) as url:
        yield url


def _batch(n: int, size: int = 20) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for i in range(size):
        k = n * size + i
        events.append(exposure(k, visitor=f"v{k % 97}", ts=NOW_MS + k))
        if i % 5 == 0:
            events.append(outcome(f"d{k}-0", ts=NOW_MS + k + 10, visitor=f"v{k % 97}"))
    return events


def _drain(url: str, store: SqliteStore, want: int) -> Consumed:
    return asyncio.run(
        consume(url, store, stop=lambda c: c.events >= want, idle=0.5),
    )


def test_published_batches_reach_the_store_once(nats_url: str, tmp_path: Path) -> None:
    sink = JetStreamSink(nats_url)
    try:
        first = sink.append(_batch(0))
        again = sink.append(_batch(0))  # a resend within the duplicate window
        other = sink.append(_batch(1))
    finally:
        sink.close()
    assert (first.accepted, first.duplicates) == (24, 0)
    assert (again.accepted, again.duplicates) == (0, 24)
    assert other.accepted == 24
    store = SqliteStore(tmp_path / "events.db")
    done = _drain(nats_url, store, 48)
    assert (done.messages, done.events, done.stored, done.refused) == (2, 48, 48, 0)
    assert store.ids() == {e["id"] for e in _batch(0) + _batch(1)}


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "EDGEPICK_SECRET": SECRET.decode(), "PYTHONPATH": str(ROOT)}
    out = open(log, "ab")  # noqa: SIM115 (the child owns it)
    return subprocess.Popen([*EDGEPICK, *args], cwd=ROOT, env=env, stdout=out, stderr=out)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def test_kill_9_of_collector_and_consumer_loses_no_acknowledged_event(
    nats_url: str, tmp_path: Path
) -> None:
    store_path = tmp_path / "events.db"
    log = tmp_path / "procs.log"
    consume_args = ["lake", "consume", "--nats", nats_url, "--store", str(store_path)]
    consume_args += ["--ack-wait", "2", "--batch", "8"]
    port = free_port()
    serve_args = ["lake", "serve", "--nats", nats_url, "--port", str(port)]
    collector = _spawn(serve_args, log)
    consumer = _spawn(consume_args, log)
    acknowledged: set[str] = set()
    sent = 0
    lock = threading.Lock()

    def send(first: int, count: int) -> None:
        nonlocal sent
        with httpx.Client(timeout=5.0) as client:
            for n in range(first, first + count):
                events = _batch(n)
                body = encode_batch(events)
                headers = {SIGNATURE_HEADER: sign(body, SECRET)}
                try:
                    answer = client.post(
                        f"http://127.0.0.1:{port}/v1/events", content=body, headers=headers
                    )
                except httpx.HTTPError:
                    continue  # the collector is down: not acknowledged, the edge would retry
                with lock:
                    sent += 1
                    if answer.status_code == 200:
                        acknowledged.update(e["id"] for e in events)

    try:
        wait_port(port)
        send(0, 60)
        _kill(consumer)  # mid-stream: some fetched messages were never acked
        sender = threading.Thread(target=send, args=(60, 400))
        sender.start()
        while sent < 120 and sender.is_alive():
            threading.Event().wait(0.01)
        _kill(collector)  # while batches are in flight
        sender.join(60)
        collector = _spawn(serve_args, log)
        wait_port(port)
        consumer = _spawn(consume_args, log)
        send(460, 40)
        before_kill = len(acknowledged)
        assert 100 * 24 < before_kill < 500 * 24  # the kill refused some batches
        deadline = 90.0
        store = SqliteStore(store_path)
        waited = 0.0
        while not acknowledged <= store.ids() and waited < deadline:
            threading.Event().wait(0.5)
            waited += 0.5
        missing = acknowledged - store.ids()
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
        rows = sum(store.count(kind) for kind in ("exposure", "click"))
        assert rows == len(store.ids())  # each event once
    finally:
        for proc in (collector, consumer):
            if proc.poll() is None:
                _kill(proc)
