"""The origin service under load from slow clients (slowloris): trickling connections are cut
after the request deadline, a real signed batch still gets through, nothing logs a traceback."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from cli.devstack import free_port
from core.events import SIGNATURE_HEADER, encode_batch, page_view, sign
from origin import server
from origin.collector import Service, create_app
from origin.store import SqliteStore
from tests.origin.helpers import NOW_MS, SECRET

SLOW = 60  # trickling connections, more than the edge's batches would ever open


class Quick(server.GuardedH11):
    request_timeout = 1.0


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[int, SqliteStore]]:
    store = SqliteStore(tmp_path / "events.db")
    port = free_port()
    config = uvicorn.Config(
        create_app(Service(store, SECRET)),
        host="127.0.0.1",
        port=port,
        http=Quick,
        limit_concurrency=server.MAX_CONNECTIONS,
        h11_max_incomplete_event_size=server.MAX_INCOMPLETE,
        log_level="warning",
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.started
    server.refused.clear()
    yield port, store
    instance.should_exit = True
    thread.join(timeout=10)


def _trickle(port: int, body_too: bool) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if body_too:  # complete headers, then a body that never finishes
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    else:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    return sock


def _post_batch(port: int) -> int:
    body = encode_batch([page_view("pv-1", "v-1", NOW_MS, "/c/running", "running")])
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/events",
        data=body,
        headers={"content-type": "application/json", SIGNATURE_HEADER: sign(body, SECRET)},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["accepted"] == 1
        return int(response.status)


def test_slow_clients_are_cut_and_real_batches_get_through(
    running: tuple[int, SqliteStore], caplog: pytest.LogCaptureFixture
) -> None:
    port, store = running
    caplog.set_level(logging.WARNING)
    slow = [_trickle(port, body_too=i % 2 == 1) for i in range(SLOW)]
    started = time.monotonic()
    for sock in slow[:5]:
        sock.sendall(b"a")  # still trickling: each byte is no reason to wait longer
    assert _post_batch(port) == 200  # while all of them hold a connection
    assert time.monotonic() - started < 1.0
    time.sleep(1.5)  # past the deadline
    for sock in slow:
        sock.settimeout(2)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1024) == b""  # closed by the server
        sock.close()
    assert server.refused["request not received in time"] == SLOW
    assert len(list(store.page_views())) == 1
    assert "Traceback" not in caplog.text
    assert sum("refused" in r.getMessage() for r in caplog.records) <= 2  # one line, not 60


def test_a_kept_alive_connection_gets_a_fresh_deadline_per_request(
    running: tuple[int, SqliteStore],
) -> None:
    port, _ = running
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(3):  # three requests over 2 s on one kept-alive connection
        connection.request("GET", "/health")
        answer = connection.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["ok"] is True
        time.sleep(0.7)
    connection.close()
    assert server.refused["request not received in time"] == 0
