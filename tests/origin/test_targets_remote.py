"""The wrangler local-KV target (real wrangler 3.92) and the Cloudflare API target (stand-in)."""

from __future__ import annotations

import base64
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from core.snapshot import decode_header
from origin.publish import CURRENT_KEY, PublishError, publish, rollback
from origin.registry import Registry
from origin.targets import CloudflareTarget, TargetError, WranglerTarget, bulk_chunks
from tests.origin.helpers import ROOT
from tests.origin.test_registry_publish import variant_blob

WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
CONFIG = """name = "t"
main = "entry.py"
compatibility_date = "2024-11-06"
compatibility_flags = ["python_workers"]

[[kv_namespaces]]
binding = "SNAPSHOTS"
id = "00000000000000000000000000000000"
"""


@pytest.mark.skipif(not WRANGLER.exists() and shutil.which("npx") is None, reason="no wrangler")
def test_wrangler_local_kv_publish_and_rollback(tmp_path: Path, fixture_blob: bytes) -> None:
    config = tmp_path / "wrangler.toml"
    config.write_text(CONFIG)
    (tmp_path / "entry.py").write_text("")
    kv = WranglerTarget(tmp_path / "state", config=config)
    registry = Registry(tmp_path / "reg")
    first = publish(fixture_blob, [kv], registry).header.id
    assert kv.get(CURRENT_KEY) == first.encode()
    assert kv.get(f"snap/{first}") == fixture_blob  # binary-exact through wrangler
    second = publish(variant_blob(3, parent=first), [kv], registry).header.id
    assert kv.get(CURRENT_KEY) == second.encode()
    rollback(registry, first, [kv])
    assert kv.get(CURRENT_KEY) == first.encode()
    kv.put_many({"profile/u-1": b"\x00\x01bytes", "profile/u-2": b"two"})
    assert kv.get("profile/u-1") == b"\x00\x01bytes"


class Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []
    fail_keys: ClassVar[set[str]] = set()

    def do_PUT(self) -> None:
        length = int(self.headers.get("content-length", 0))
        body = self.rfile.read(length)
        self.requests.append(
            {"method": "PUT", "path": self.path, "headers": dict(self.headers), "body": body}
        )
        failing = any(self.path.endswith(k.replace("/", "%2F")) for k in self.fail_keys)
        status = 500 if failing else 200
        payload = {
            "success": not failing,
            "errors": [{"code": 10001, "message": "boom"}] if failing else [],
            "messages": [],
            "result": {},
        }
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def standin() -> Iterator[str]:
    Recorder.requests = []
    Recorder.fail_keys = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/client/v4"
    finally:
        server.shutdown()
        server.server_close()


def test_cloudflare_target_writes_blob_before_pointer(
    standin: str, tmp_path: Path, fixture_blob: bytes
) -> None:
    kv = CloudflareTarget("acc123", "ns456", "tok", base_url=standin, max_retries=0)
    done = publish(fixture_blob, [kv], Registry(tmp_path / "reg"))
    sid = done.header.id
    paths = [r["path"] for r in Recorder.requests]
    base = "/client/v4/accounts/acc123/storage/kv/namespaces/ns456/values/"
    assert [p.removeprefix(base) for p in paths] == [f"snap%2F{sid}", "snap%2Fcurrent"]
    first, second = Recorder.requests
    assert first["headers"]["Authorization"] == "Bearer tok"
    assert "multipart/form-data" in first["headers"]["Content-Type"]
    assert fixture_blob in first["body"]  # the exact bytes, as the multipart value part
    assert sid.encode() in second["body"]
    assert decode_header(fixture_blob)[0].id == sid


def test_cloudflare_pointer_failure_is_reported_and_audited(
    standin: str, tmp_path: Path, fixture_blob: bytes
) -> None:
    registry = Registry(tmp_path / "reg")
    ok = CloudflareTarget("acc", "ns", "tok", base_url=standin, max_retries=0)
    first = publish(fixture_blob, [ok], registry).header.id
    Recorder.fail_keys = {CURRENT_KEY}
    with pytest.raises(PublishError, match=f"still point at {first}"):
        publish(variant_blob(4, parent=first), [ok], registry)
    assert registry.current() == first
    assert list(registry.audit_log())[-1]["stage"] == "pointer"


def test_cloudflare_profiles_go_in_one_bulk_request(standin: str) -> None:
    kv = CloudflareTarget("acc", "ns", "tok", base_url=standin, max_retries=0)
    kv.put_many({"profile/u-1": b"\x00\x01", "profile/u-2": b"two"})
    (request,) = Recorder.requests
    assert request["path"] == "/client/v4/accounts/acc/storage/kv/namespaces/ns/bulk"
    sent = json.loads(request["body"])
    assert [(e["key"], base64.b64decode(e["value"]), e["base64"]) for e in sent] == [
        ("profile/u-1", b"\x00\x01", True),
        ("profile/u-2", b"two", True),
    ]


class CountingBulk:
    """A stand-in for the ``cloudflare`` client's ``kv.namespaces``: counts bulk requests."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.requests: list[list[dict[str, Any]]] = []
        self.fail_at = fail_at
        self.kv = self
        self.namespaces = self

    def bulk_update(self, namespace_id: str, *, account_id: str, body: Any) -> None:
        import cloudflare
        import httpx

        assert (namespace_id, account_id) == ("ns", "acc")
        if self.fail_at is not None and len(self.requests) == self.fail_at:
            request = httpx.Request("PUT", "https://api.cloudflare.com/bulk")
            raise cloudflare.APIConnectionError(request=request)
        self.requests.append(list(body))


def test_cloudflare_bulk_writes_go_in_requests_of_at_most_10000_keys() -> None:
    """Cloudflare's bulk write takes 10,000 keys per request: 25,001 profiles are 3 requests,
    in order, every key once (a fake client: the real API cannot be reached from the tests)."""
    kv = CloudflareTarget("acc", "ns", "tok", max_retries=0)
    fake = CountingBulk()
    kv.client = fake  # type: ignore[assignment]
    items = {f"profile/u-{n}": f"p{n}".encode() for n in range(25_001)}
    kv.put_many(items)
    assert [len(r) for r in fake.requests] == [10_000, 10_000, 5_001]
    sent = [(e["key"], base64.b64decode(e["value"])) for r in fake.requests for e in r]
    assert sent == list(items.items())
    kv.put_many({})
    assert len(fake.requests) == 3  # nothing to write: no request
    failing = CountingBulk(fail_at=1)
    kv.client = failing  # type: ignore[assignment]
    with pytest.raises(TargetError, match="after 10000 of 25001 were written"):
        kv.put_many(items)


def test_bulk_chunks_also_bound_the_request_size() -> None:
    items = {f"k{n}": b"x" * 300 for n in range(10)}  # 400 base64 bytes + 2 of key each
    sizes = [len(c) for c in bulk_chunks(items, max_keys=10_000, max_bytes=1_000)]
    assert sizes == [2, 2, 2, 2, 2]
    big = {"a": b"y" * 3000, "b": b"z"}  # one item over the bound still goes, alone
    assert [len(c) for c in bulk_chunks(big, max_bytes=1_000)] == [1, 1]
