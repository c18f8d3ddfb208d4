"""The JetStream transport when things go wrong: an idle consumer stays up, a collector whose
NATS server is gone answers a quick 503, an unreachable server is one line per retry."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

import pytest
from starlette.testclient import TestClient

from core.events import SIGNATURE_HEADER, encode_batch, sign
from origin.collector import Service, create_app
from origin.lake.stream import JetStreamSink
from origin.store import EventStore, SqliteStore
from tests.origin.helpers import NOW_MS, ROOT, SECRET, exposure
from tests.origin.lake.natsd import free_port, nats_server

EDGEPICK = [sys.executable, "-m", "cli.main"]


def _wait(check: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_an_idle_consumer_survives_empty_fetches_and_stores_what_comes_later(
    tmp_path: Path,
) -> None:
    """nats-py raises asyncio's TimeoutError (not its own) when a fetch's time runs out in its
    second request; a tiny ``--idle`` hits that path within a second or two."""
    store_path = tmp_path / "events.db"
    log = tmp_path / "consume.log"
    with nats_server(tmp_path) as url:
        args = ["lake", "consume", "--nats", url, "--store", str(store_path), "--idle", "0.003"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(log, "wb") as out:
            proc = subprocess.Popen([*EDGEPICK, *args], cwd=ROOT, env=env, stdout=out, stderr=out)
        try:
            time.sleep(6.0)  # thousands of empty fetches
            assert proc.poll() is None, log.read_text()
            sink = JetStreamSink(url)
            try:
                events = [exposure(n, visitor=f"v{n}", ts=NOW_MS + n) for n in range(5)]
                assert sink.append(events).accepted == 5
            finally:
                sink.close()
            store = SqliteStore(store_path)
            assert _wait(lambda: store.ids() == {e["id"] for e in events}, 20), log.read_text()
            assert proc.poll() is None, log.read_text()
        finally:
            proc.terminate()
            proc.wait(10)
    assert "Traceback" not in log.read_text()


def test_a_collector_without_its_nats_server_answers_503_quickly(tmp_path: Path) -> None:
    events = [exposure(n, visitor=f"v{n}", ts=NOW_MS + n) for n in range(3)]
    body = encode_batch(events)
    headers = {SIGNATURE_HEADER: sign(body, SECRET)}
    with nats_server(tmp_path) as url:
        sink = JetStreamSink(url)
        client = TestClient(create_app(Service(cast(EventStore, sink), SECRET)))
        assert client.post("/v1/events", content=body, headers=headers).status_code == 200
        assert client.get("/health").json()["ok"] is True
    try:  # the server is stopped
        deadline = time.monotonic() + 10
        while client.get("/health").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        health = client.get("/health")  # a load balancer sends elsewhere
        assert health.status_code == 503 and "not connected" in health.json()["problem"]
        for _ in range(2):
            started = time.monotonic()
            answer = client.post("/v1/events", content=body, headers=headers)
            took = time.monotonic() - started
            assert answer.status_code == 503, answer.text
            assert "event stream is unavailable" in answer.json()["error"]
            assert took < 3.5
    finally:
        sink.close()


def test_an_unreachable_nats_server_is_one_line_per_retry(tmp_path: Path) -> None:
    url = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    args = ["lake", "consume", "--nats", url, "--store", str(tmp_path / "e.db")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [*EDGEPICK, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        time.sleep(5.0)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode()
    assert "Traceback" not in out
    retries = [line for line in out.splitlines() if "retrying in 2 s" in line]
    assert len(retries) >= 2, out
    assert url in retries[0] and "ConnectionRefusedError" in retries[0]


@pytest.mark.parametrize("command", [["lake", "serve"], ["serve", "--store", "STORE"]])
def test_serve_says_it_waits_for_nats(tmp_path: Path, command: list[str]) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    args = [a.replace("STORE", str(tmp_path / "e.db")) for a in command]
    args += ["--nats", url, "--port", str(free_port()), "--registry", str(tmp_path / "reg")]
    if command[0] == "lake":
        args.remove("--registry")
        args.remove(str(tmp_path / "reg"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EDGEPICK_SECRET": SECRET.decode()}
    proc = subprocess.Popen(
        [*EDGEPICK, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        time.sleep(4.0)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode()
    assert f"waiting for NATS at {url}" in out and "retrying in 2 s" in out, out
    assert "Traceback" not in out
