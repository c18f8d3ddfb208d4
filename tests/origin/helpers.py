"""Event builders and a local server helper for the origin tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from core import events

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"test-secret"
NOW_MS = 1_790_000_000_000


def exposure(
    n: int,
    slot: str = "headline",
    variant: str = "hl-classic",
    *,
    visitor: str = "v-1",
    ts: int = NOW_MS,
    features: list[float] | None = None,
    reason: str = "policy",
    user: str = "",
    path: str = "",
    decision_us: int = 120,
    request: str | None = None,
    position: int = 0,
) -> dict[str, Any]:
    """A valid exposure event (id ``d<n>-0`` unless ``request`` names the request id)."""
    event: dict[str, Any] = {
        "type": "exposure",
        "id": f"{request or f'd{n}'}-{position}",
        "ts": ts,
        "visitor": visitor,
        "user": user,
        "slot": slot,
        "variant": variant,
        "propensity": 0.5,
        "policy": "thompson",
        "reason": reason,
        "snapshot": "s1",
        "features": features or [],
        "decision_us": decision_us,
        "device": "desktop",
        "country": "DE",
    }
    if path:
        event["path"] = path
    return event


def outcome(
    decision: str, kind: str = "click", ts: int = NOW_MS, value: float = 0.0, visitor: str = "v-1"
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "id": f"{decision}:{kind}",
        "ts": ts,
        "visitor": visitor,
        "decision": decision,
    }
    if kind == "conversion":
        event["value"] = value
    return event


def identify(visitor: str, user: str, ts: int = NOW_MS, flags: list[str] | None = None) -> dict:  # type: ignore[type-arg]
    event: dict[str, Any] = {
        "type": "identify",
        "id": f"id:{visitor}:{user}:{ts}",
        "ts": ts,
        "visitor": visitor,
        "user": user,
    }
    if flags:
        event["flags"] = flags
    return event


def signed(batch: list[dict[str, Any]], secret: bytes = SECRET) -> tuple[bytes, dict[str, str]]:
    body = events.encode_batch(batch)
    return body, {
        events.SIGNATURE_HEADER: events.sign(body, secret),
        "content-type": "application/json",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, store: Path, registry: Path) -> subprocess.Popen[bytes]:
    """``edgepick serve`` in a subprocess on 127.0.0.1; waits (bounded) until /health answers."""
    cmd = [
        sys.executable,
        "-m",
        "cli.main",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--store",
        str(store),
        "--registry",
        str(registry),
    ]
    env = {**os.environ, "EDGEPICK_SECRET": SECRET.decode()}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not come up within 20 s")
