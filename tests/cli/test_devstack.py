"""``make dev``'s wiring: the collector it starts listens where ``wrangler.toml`` sends events,
with the secret ``.dev.vars`` gives the worker; and the whole local loop runs for real."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from cli import devstack
from cli.devstack import COLLECTOR_PATH, SECRETS, WRANGLER, dev_plan, read_dev_vars
from core.snapshot import decode_header
from origin.registry import Registry
from origin.store import SqliteStore
from origin.targets import WranglerTarget, parse_target

ROOT = devstack.ROOT
WRANGLER_VARS = tomllib.loads((ROOT / "wrangler.toml").read_text())["vars"]
UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A directory with the repository's wrangler.toml and Makefile (and no .dev.vars)."""
    for name in ("wrangler.toml", "Makefile"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_collector_listens_where_wrangler_toml_sends_events(checkout: Path) -> None:
    plan = dev_plan(checkout)
    assert plan.collector_url == WRANGLER_VARS["COLLECTOR_URL"]
    assert plan.collector_url == f"http://127.0.0.1:{plan.collector_port}{COLLECTOR_PATH}"
    assert plan.collector_port == 8790
    assert WRANGLER_VARS["ORIGIN_URL"] == f"http://127.0.0.1:{plan.store_port}"
    assert plan.worker_port == 8787
    assert len({plan.worker_port, plan.store_port, plan.collector_port}) == 3
    # without .dev.vars the worker gets fresh secrets as --var, the collector the same one
    assert set(plan.worker_vars) == set(SECRETS)
    assert plan.events_secret == plan.worker_vars["EVENTS_SECRET"] != ""


def test_the_collector_route_is_the_one_wrangler_toml_names() -> None:
    from origin.collector import Service, create_app

    app = create_app(Service(None, b"s", None))  # type: ignore[arg-type]
    paths = {getattr(route, "path", "") for route in app.routes}
    assert COLLECTOR_PATH in paths


def test_make_dev_vars_gives_the_collector_the_worker_s_events_secret(checkout: Path) -> None:
    done = subprocess.run(
        ["make", "-s", "dev-vars"], cwd=checkout, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    written = read_dev_vars(checkout / ".dev.vars")
    assert set(written) == set(SECRETS) and all(written.values())
    plan = dev_plan(checkout)
    assert plan.events_secret == written["EVENTS_SECRET"]
    assert plan.worker_vars == {}  # wrangler dev reads .dev.vars itself
    config = (ROOT / "edge" / "config.py").read_text()
    assert all(f"| {name} |" in config for name in SECRETS)  # the names the worker reads


def test_a_dev_vars_without_the_events_secret_is_refused(checkout: Path) -> None:
    (checkout / ".dev.vars").write_text("COOKIE_KEYS=dev:abc\nPREVIEW_KEY=x\nIDENTITY_KEY=y\n")
    with pytest.raises(ValueError, match="lacks EVENTS_SECRET"):
        dev_plan(checkout)


def _busy(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_make_dev_runs_the_whole_local_loop(tmp_path: Path) -> None:
    """``cli.devstack.main`` (what ``make dev`` runs) on wrangler.toml's ports: a browser-like
    page view through the worker lands in the collector's store."""
    assert WRANGLER.exists(), "run `make setup` (npm ci) first"
    plan = dev_plan()
    busy = [p for p in (plan.worker_port, plan.store_port, plan.collector_port) if _busy(p)]
    assert not busy, f"ports {busy} are taken (is `make dev` running?)"
    processes = devstack.main(work=tmp_path, forever=False)
    try:
        assert [p.name for p in processes] == ["sample store", "edgepick serve", "wrangler dev"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{plan.worker_port}/",
            headers={"User-Agent": UA, "Accept": "text/html", "Sec-Fetch-Dest": "document"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200 and b"data-edgepick-decision" in response.read()
        store = SqliteStore(tmp_path / "events.db")
        deadline = time.monotonic() + 20
        while store.count("exposure") == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store.count("exposure") > 0, "\n".join(p.tail() for p in processes)
        store.close()
    finally:
        for process in reversed(processes):
            process.stop()


def test_a_pinned_worker_has_its_own_config_and_no_build_step(tmp_path: Path) -> None:
    config = devstack.pinned_worker(tmp_path / "worker")
    settings = tomllib.loads(config.read_text())
    assert "build" not in settings  # never rebuilt (nor restarted) when core/ or edge/ change
    assert (config.parent / settings["main"]).is_file()
    assert (config.parent / "edge" / "handler.py").is_file()  # the bundle, built into it
    repo = tomllib.loads((ROOT / "wrangler.toml").read_text())
    for key in ("name", "compatibility_date", "compatibility_flags", "kv_namespaces", "vars"):
        assert settings[key] == repo[key]


def test_make_dev_serves_the_registry_s_live_snapshot_when_there_is_one(
    tmp_path: Path, fixture_blob: bytes
) -> None:
    """A restart of ``make dev`` keeps what the workspace, a rollback or ``sync`` published;
    a registry with nothing live yet (or ``make dev FRESH=1``) gets the fixture."""
    registry = tmp_path / "registry"
    assert devstack.live_snapshot(registry) is None
    Registry(registry).add(fixture_blob)
    assert devstack.live_snapshot(registry) is None  # stored, not live
    sid = Registry(registry).add(fixture_blob).id
    Registry(registry).set_current(sid)
    assert devstack.live_snapshot(registry) == fixture_blob


def test_a_restart_serves_the_live_snapshot_again_not_the_fixture(
    tmp_path: Path, fixture_blob: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``main``'s plan with the processes left out: what it compiles, publishes and writes to
    the worker's KV (a real ``wrangler kv`` write into a local state folder)."""
    ran: list[list[str]] = []
    monkeypatch.setattr("cli.devstack.subprocess.run", lambda args, **_: ran.append(list(args)))
    for name in ("start_store", "start_collector", "start_wrangler"):
        monkeypatch.setattr(devstack, name, lambda *_, **__: None)
    written: list[tuple[bytes, Path]] = []
    monkeypatch.setattr(devstack, "serve_again", lambda blob, state: written.append((blob, state)))
    registry = Registry(tmp_path / "registry")
    registry.set_current(registry.add(fixture_blob).id)
    audit = len(list(registry.audit_log()))

    devstack.main(work=tmp_path, forever=False)
    assert ran == []  # nothing compiled, nothing published through the registry...
    assert written == [(fixture_blob, tmp_path / "state")]  # ... the live one served again
    assert len(list(registry.audit_log())) == audit  # and its history left as it was

    devstack.main(work=tmp_path, forever=False, fresh=True)  # make dev FRESH=1
    assert any("compile" in args for args in ran) and any("publish" in args for args in ran)


def test_serving_again_writes_the_blob_then_the_pointer(
    tmp_path: Path, fixture_blob: bytes
) -> None:
    assert WRANGLER.exists(), "run `make setup` (npm ci) first"
    devstack.serve_again(fixture_blob, tmp_path / "state")
    target = parse_target(f"wrangler:{tmp_path / 'state'}")
    assert isinstance(target, WranglerTarget)
    sid = decode_header(fixture_blob)[0].id
    assert target.get("snap/current") == sid.encode()
    assert target.get(f"snap/{sid}") == fixture_blob
