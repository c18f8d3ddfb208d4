"""Fault: the collector is killed (SIGKILL) mid-stream; no acknowledged event may be lost."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx

from origin.store import SqliteStore
from tests.origin.helpers import exposure, free_port, outcome, signed, start_server

BATCH = 50


def _send(port: int, stop: threading.Event, acked: list[str], sent: list[list[str]]) -> None:
    n = 0
    with httpx.Client(timeout=5.0) as client:
        while not stop.is_set() and n < 4000:  # bounded
            batch = [exposure(n + i, visitor=f"v{n + i}") for i in range(BATCH)]
            batch += [outcome(e["id"]) for e in batch[:5]]
            ids = [e["id"] for e in batch]
            sent.append(ids)
            n += BATCH
            body, headers = signed(batch)
            try:
                response = client.post(
                    f"http://127.0.0.1:{port}/v1/events", content=body, headers=headers
                )
            except httpx.HTTPError:
                return  # the server is gone: this batch was not acknowledged
            if response.status_code == 200:
                acked.extend(ids)


def test_killed_collector_loses_no_acknowledged_event(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "events.db"
    proc = start_server(port, db, tmp_path / "registry")
    acked: list[str] = []
    sent: list[list[str]] = []
    stop = threading.Event()
    sender = threading.Thread(target=_send, args=(port, stop, acked, sent))
    try:
        sender.start()
        deadline = time.monotonic() + 20
        while len(acked) < 10 * (BATCH + 5) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the sender is still posting
        proc.wait(timeout=10)
        sender.join(timeout=20)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
    assert len(acked) >= 10 * (BATCH + 5), "the stream did not get going"
    assert len(sent) * (BATCH + 5) > len(acked), "the kill came after the stream ended"

    proc = start_server(port, db, tmp_path / "registry")  # restart on the same store
    try:
        stored = SqliteStore(db).ids()
        missing = set(acked) - stored
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
        # the sender retries what was not acknowledged: stored once, whatever got in before
        retry = [
            exposure(int(i[1:-2]), visitor=f"v{int(i[1:-2])}") for i in sent[-1] if ":" not in i
        ]
        body, headers = signed(retry)
        response = httpx.post(f"http://127.0.0.1:{port}/v1/events", content=body, headers=headers)
        assert response.status_code == 200
        counts = response.json()
        assert counts["accepted"] + counts["duplicates"] == len(retry)
        assert {e["id"] for e in retry} <= SqliteStore(db).ids()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
