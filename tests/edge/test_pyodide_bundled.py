"""A snapshot bundled with the worker (``python -m compile.bundle --snapshot``) is prepared at
import (and the request path warmed on it, ``edge.warmup``), under Pyodide: a new isolate
personalizes before KV holds anything, and KV's current snapshot supersedes it once
published."""

from __future__ import annotations

import json
from pathlib import Path

from cli.devstack import free_port, start_store
from compile.bundle import build as build_bundle
from compile.site import compile_site, load_toml
from core.snapshot import decode_header, encode_snapshot
from tests.conftest import FIXTURES
from tests.edge.test_pyodide import SDK_WHEEL, Harness, kv_with


def test_a_bundled_snapshot_serves_until_kv_supersedes_it(
    tmp_path: Path, fixture_blob: bytes
) -> None:
    build_bundle(tmp_path / "bundle", snapshot=fixture_blob)
    bundled_id = decode_header(fixture_blob)[0].id
    config = load_toml(FIXTURES / "site.toml")
    config["slots"]["headline"]["variants"][0]["content"] = "Published later"
    newer = encode_snapshot(compile_site(config))
    newer_id = decode_header(newer)[0].id
    (tmp_path / "newer.snap").write_bytes(newer)
    store_port = free_port()
    store = start_store(store_port, tmp_path)
    settings = {
        "bundle": str(tmp_path / "bundle"),
        "sdk_wheel": str(SDK_WHEEL),
        "env": {
            "ORIGIN_URL": f"http://127.0.0.1:{store_port}",
            "COOKIE_KEYS": "k1:bundled-cookie-secret",
            "HEALTH_KEY": "bundled-health",
            "SNAPSHOT_TTL_SECONDS": "0",
        },
        "kv": {},
    }
    (tmp_path / "harness.json").write_text(json.dumps(settings))
    harness = Harness(tmp_path / "harness.json", tmp_path / "harness.log")
    try:
        reply = harness.get("/")  # nothing in KV: the bundled snapshot serves
        assert reply["status"] == 200 and reply.html.count("data-edgepick-decision=") == 4
        health = json.loads(harness.get("/_edgepick/health").body)
        assert health["ok"] is True and health["snapshot"] == bundled_id

        harness.call(op="isolate", kv=kv_with(tmp_path / "newer.snap", newer_id))
        health = json.loads(harness.get("/_edgepick/health").body)
        assert health["snapshot"] == newer_id  # KV's current supersedes the bundled one
        reply = harness.get("/", user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0")
        assert reply["status"] == 200
    finally:
        harness.stop()
        store.stop()
    log = (tmp_path / "harness.log").read_text()
    assert "edge/warmup.py" not in log and "Traceback" not in log  # the import's warm-up ran clean
