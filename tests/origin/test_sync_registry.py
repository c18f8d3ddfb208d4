"""``edgepick sync`` compiling the registry's live config version instead of a file."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from cli.main import main
from compile.site import load_toml
from core.engine import Engine
from core.snapshot import decode_snapshot
from origin.publish import CURRENT_KEY
from origin.registry import Registry, RegistryError
from origin.store import SqliteStore
from origin.sync import SyncJob, live_config, run_round
from origin.targets import DirTarget
from origin.workspace.versions import Versions
from tests.conftest import FIXTURES
from tests.origin.helpers import NOW_MS
from tests.origin.test_sync_cli import simulate

CONTENT = "Outdoor gear, edited in the workspace"


def _job(root: Path, store: SqliteStore, config: Path | None) -> SyncJob:
    return SyncJob(
        config=config,
        store=store,
        registry=Registry(root / "reg"),
        targets=[DirTarget(root / "kv")],
        model=FIXTURES / "model.json",
        clock=lambda: NOW_MS / 1000 + 3600,
    )


def _headline_content(kv: DirTarget) -> str:
    current = (kv.get(CURRENT_KEY) or b"").decode()
    site = decode_snapshot(kv.get(f"snap/{current}") or b"").site
    headline = next(s for s in site.slots if s.name == "headline")
    return next(v.content for v in headline.variants if v.id == "hl-classic")


def test_sync_compiles_the_live_config_version_each_round(tmp_path: Path, engine: Engine) -> None:
    store = SqliteStore(tmp_path / "events.db")
    simulate(store, engine, 400)
    from_file = run_round(_job(tmp_path / "file", store, FIXTURES / "site.toml"))

    job = _job(tmp_path / "live", store, None)
    with pytest.raises(RegistryError, match="no config version"):
        run_round(job)
    versions = Versions(job.registry)
    config = load_toml(FIXTURES / "site.toml")
    seeded = versions.put(config)
    versions.keep_text(seeded, (FIXTURES / "site.toml").read_text(encoding="utf-8"))
    versions.move(seeded, "seed", "test", "the fixture site")
    first = run_round(job)
    # the version seeded from the file, read as `edgepick pull` gives it: the same snapshot
    assert first.published and first.snapshot == from_file.snapshot
    # the workspace publishes an edit (HEAD moves; no TOML text): the next round compiles it
    edited = copy.deepcopy(config)
    edited["slots"]["headline"]["variants"][0]["content"] = CONTENT
    vid = versions.put(edited)
    versions.move(vid, "publish", "ana", "new headline")
    assert live_config(job.registry) == (edited, vid)
    second = run_round(job)
    assert second.published and second.snapshot != first.snapshot
    assert _headline_content(DirTarget(tmp_path / "live" / "kv")) == CONTENT


def test_cli_sync_from_the_registry(
    tmp_path: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SqliteStore(tmp_path / "events.db")
    simulate(store, engine, 200)
    registry = tmp_path / "reg"
    common = ["--store", str(store.path), "--registry", str(registry), "--once"]
    common += ["--target", f"dir:{tmp_path / 'kv'}", "--model", str(FIXTURES / "model.json")]
    assert main(["sync", "--from-registry", *common]) == 1  # no HEAD yet: said at once
    assert "no config version" in capsys.readouterr().err
    versions = Versions(Registry(registry))
    versions.move(versions.put(load_toml(FIXTURES / "site.toml")), "seed", "test", "seed")
    assert main(["sync", str(FIXTURES / "site.toml"), "--from-registry", *common]) == 2
    assert main(["sync", "--from-registry", *common]) == 0
    published = Registry(registry).current()
    assert published is not None
    assert main(["sync", *common]) == 0  # no config file: the live version too, unchanged
    assert Registry(registry).current() == published
    assert DirTarget(tmp_path / "kv").get(CURRENT_KEY) == published.encode()
