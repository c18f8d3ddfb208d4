"""Publish targets: where KV keys (``snap/<id>``, ``snap/current``, ``profile/<user>``) go.

* ``dir:PATH``: a plain directory, one file per key (``PATH/snap/current``), written atomically.
* ``wrangler:PERSIST_DIR[,config=FILE][,binding=NAME]``: the local KV state ``wrangler dev
  --persist-to PERSIST_DIR`` reads, written with ``wrangler kv key put ... --local``.
* ``cloudflare:ACCOUNT_ID/NAMESPACE_ID[,base_url=URL]``: Workers KV through Cloudflare's API
  with the official ``cloudflare`` client; the token comes from ``CLOUDFLARE_API_TOKEN``.
  Many keys (the profiles) go through the bulk write, 10,000 keys per request at most.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from origin.registry import write_atomic


def quiet_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for wrangler: no telemetry, non-interactive."""
    return {
        **os.environ,
        "WRANGLER_SEND_METRICS": "false",
        "CI": "1",
        "NO_COLOR": "1",
        **(extra or {}),
    }


ROOT = Path(__file__).resolve().parent.parent
TOKEN_ENV = "CLOUDFLARE_API_TOKEN"


class TargetError(RuntimeError):
    """A target refused or failed a write; the message names the target and the key."""


class Target(Protocol):
    name: str

    def put(self, key: str, value: bytes) -> None: ...

    def put_many(self, items: Mapping[str, bytes]) -> None: ...


def _check_key(key: str) -> None:
    if not key or len(key.encode()) > 512 or any(c.isspace() for c in key) or ".." in key:
        raise TargetError(f"key {key!r}: must be 1-512 bytes, no whitespace, no '..'")


class DirTarget:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.name = f"dir:{self.root}"

    def put(self, key: str, value: bytes) -> None:
        _check_key(key)
        write_atomic(self.root / key, value)

    def put_many(self, items: Mapping[str, bytes]) -> None:
        for key, value in items.items():
            self.put(key, value)

    def get(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.exists() else None


class WranglerTarget:
    """Local wrangler KV state, written by wrangler itself (what ``wrangler dev`` reads)."""

    def __init__(
        self,
        persist_to: str | Path,
        binding: str = "SNAPSHOTS",
        config: str | Path | None = None,
        cwd: str | Path = ROOT,
        timeout: float = 120.0,
    ) -> None:
        self.persist_to = Path(persist_to).resolve()
        self.binding = binding
        self.config = Path(config).resolve() if config else None
        self.cwd = Path(cwd)
        self.timeout = timeout
        self.name = f"wrangler:{self.persist_to}"

    def _wrangler(self) -> list[str]:
        local = self.cwd / "node_modules" / ".bin" / "wrangler"
        return [str(local)] if local.exists() else ["npx", "wrangler"]

    def _run(self, *args: str) -> str:
        cmd = [*self._wrangler(), *args, "--binding", self.binding, "--local"]
        cmd += ["--persist-to", str(self.persist_to)]
        if self.config:
            cmd += ["--config", str(self.config)]
        env = quiet_env()
        try:
            done = subprocess.run(
                cmd, cwd=self.cwd, env=env, capture_output=True, text=True, timeout=self.timeout
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TargetError(f"{self.name}: could not run wrangler ({exc})") from exc
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise TargetError(f"{self.name}: wrangler {args[:3]} failed: {' | '.join(tail)}")
        return done.stdout

    def put(self, key: str, value: bytes) -> None:
        _check_key(key)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "value"
            path.write_bytes(value)
            self._run("kv", "key", "put", key, "--path", str(path))

    def put_many(self, items: Mapping[str, bytes]) -> None:
        """One ``kv key put`` per key: wrangler 3.92's local ``kv bulk put`` stores ``base64``
        values without decoding them (seen here), so binary values cannot go in bulk."""
        for key, value in items.items():
            self.put(key, value)

    def get(self, key: str) -> bytes | None:
        """Read a key back (for checks); ``None`` when absent."""
        cmd = [*self._wrangler(), "kv", "key", "get", key, "--binding", self.binding, "--local"]
        cmd += ["--persist-to", str(self.persist_to)]
        if self.config:
            cmd += ["--config", str(self.config)]
        env = quiet_env()
        done = subprocess.run(cmd, cwd=self.cwd, env=env, capture_output=True, timeout=self.timeout)
        if done.returncode != 0 or done.stdout.strip() == b"Value not found":
            return None
        return done.stdout


class CloudflareTarget:
    """Workers KV through Cloudflare's API (the official ``cloudflare`` Python client)."""

    def __init__(
        self,
        account_id: str,
        namespace_id: str,
        api_token: str,
        base_url: str | None = None,
        max_retries: int = 2,
    ) -> None:
        import cloudflare

        if not account_id or not namespace_id:
            raise TargetError("cloudflare target: needs ACCOUNT_ID/NAMESPACE_ID")
        if not api_token:
            raise TargetError(f"cloudflare target: no API token (set {TOKEN_ENV})")
        self.account_id = account_id
        self.namespace_id = namespace_id
        self.client = cloudflare.Cloudflare(
            api_token=api_token, base_url=base_url, max_retries=max_retries
        )
        self.name = f"cloudflare:{account_id}/{namespace_id}"

    def put(self, key: str, value: bytes) -> None:
        import cloudflare

        _check_key(key)
        try:
            self.client.kv.namespaces.values.update(
                key, account_id=self.account_id, namespace_id=self.namespace_id, value=value
            )
        except cloudflare.APIError as exc:
            raise TargetError(f"{self.name}: writing {key!r} failed ({exc})") from exc

    def put_many(self, items: Mapping[str, bytes]) -> None:
        """Every item through Cloudflare's bulk write, in requests of at most ``BULK_KEYS``
        keys and about ``BULK_BYTES`` of base64 values (the API takes 10,000 keys and 100 MB
        per request), built one request at a time. A failed request raises ``TargetError``
        naming how many keys the earlier requests wrote (a retry rewrites them: puts are
        idempotent)."""
        import cloudflare

        written = 0
        for chunk in bulk_chunks(items, BULK_KEYS, BULK_BYTES):
            try:
                self.client.kv.namespaces.bulk_update(
                    self.namespace_id,
                    account_id=self.account_id,
                    body=chunk,  # type: ignore[arg-type]
                )
            except cloudflare.APIError as exc:
                raise TargetError(
                    f"{self.name}: bulk write of {len(chunk)} keys failed after {written} of "
                    f"{len(items)} were written ({exc})"
                ) from exc
            written += len(chunk)


BULK_KEYS = 10_000  # Cloudflare's bulk write: at most 10,000 keys per request
BULK_BYTES = 90 * 1024 * 1024  # and 100 MB per request: keep below it (values base64-encoded)


def bulk_chunks(
    items: Mapping[str, bytes], max_keys: int = BULK_KEYS, max_bytes: int = BULK_BYTES
) -> Iterator[list[dict[str, Any]]]:
    """``items`` as bulk-write bodies in their order: each of at most ``max_keys`` keys and,
    unless one item alone is larger, at most ``max_bytes`` of keys and base64 values
    (``4 ceil(n / 3)`` bytes for ``n`` bytes of value)."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for key, value in items.items():
        encoded = base64.b64encode(value).decode()
        grows = len(key) + len(encoded)
        if chunk and (len(chunk) >= max_keys or size + grows > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append({"key": key, "value": encoded, "base64": True})
        size += grows
    if chunk:
        yield chunk


def parse_target(spec: str) -> Target:
    """A target from its command-line spelling (see the module docstring)."""
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise TargetError(f"target {spec!r}: expected dir:PATH, wrangler:DIR or cloudflare:ACC/NS")
    main, *options = rest.split(",")
    opts: dict[str, str] = {}
    for option in options:
        name, eq, value = option.partition("=")
        if not eq:
            raise TargetError(f"target {spec!r}: option {option!r} must be NAME=VALUE")
        opts[name.strip()] = value.strip()
    allowed = {"dir": set(), "wrangler": {"config", "binding"}, "cloudflare": {"base_url"}}
    if kind not in allowed:
        raise TargetError(f"target {spec!r}: unknown kind {kind!r} (dir, wrangler, cloudflare)")
    unknown = set(opts) - allowed[kind]
    if unknown:
        raise TargetError(f"target {spec!r}: unknown option(s) {sorted(unknown)}")
    if kind == "dir":
        return DirTarget(main)
    if kind == "wrangler":
        return WranglerTarget(main, opts.get("binding", "SNAPSHOTS"), opts.get("config"))
    account, slash, namespace = main.partition("/")
    if not slash:
        raise TargetError(f"target {spec!r}: expected cloudflare:ACCOUNT_ID/NAMESPACE_ID")
    return CloudflareTarget(account, namespace, os.environ.get(TOKEN_ENV, ""), opts.get("base_url"))
