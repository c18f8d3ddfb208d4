"""A nats-server with JetStream for the tests and bench/scale.py: 127.0.0.1, a free port, a
temporary store directory, every write fsynced (``sync_interval: always``)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.origin.helpers import ROOT

NATS_SERVER = ROOT / ".venv" / "bin" / "nats-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(port: int, store: Path) -> str:
    return (
        f'listen: 127.0.0.1:{port}\njetstream {{ store_dir: "{store}", sync_interval: always }}\n'
    )


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@contextmanager
def nats_server(root: Path) -> Iterator[str]:
    """A running nats-server; yields its URL, stops it (by its pid) on exit."""
    if not NATS_SERVER.exists():
        raise RuntimeError(f"{NATS_SERVER} is missing: uv sync --frozen --all-extras")
    port = free_port()
    path = root / "nats.conf"
    path.write_text(config(port, root / "jetstream"))
    log = open(root / "nats.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([str(NATS_SERVER), "-c", str(path)], stdout=log, stderr=log)
    try:
        wait_port(port)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
