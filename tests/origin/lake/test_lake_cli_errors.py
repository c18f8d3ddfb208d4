"""`edgepick lake ...`, `report --lake` and `sync --lake` on bad input: one clear line, exit
status 1, and nothing created or changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from origin.lake.segments import Lake
from origin.store import SqliteStore
from tests.conftest import FIXTURES
from tests.origin.helpers import ROOT


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err


def test_status_of_a_missing_directory_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = tmp_path / "nowhere"
    assert main(["lake", "status", "--lake", str(where)]) == 1
    assert f"no lake at {where}" in _err(capsys)
    assert not where.exists()


def test_status_of_a_directory_that_is_not_a_lake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lake", "status", "--lake", str(tmp_path)]) == 1
    assert f"{tmp_path} is not a lake" in _err(capsys)
    assert list(tmp_path.iterdir()) == []


def test_status_of_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert main(["lake", "status", "--lake", str(path)]) == 1
    err = _err(capsys)
    assert f"{path} is a file, not a lake" in err and "Errno" not in err


def test_flush_of_a_missing_store_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "missing.db"
    lake = tmp_path / "lake"
    assert main(["lake", "flush", "--store", str(store), "--lake", str(lake)]) == 1
    assert f"no event store at {store}" in _err(capsys)
    assert not store.exists() and not lake.exists()


def test_flush_names_its_watermarks(
    store: SqliteStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lake", "flush", "--store", str(store.path), "--lake", str(tmp_path / "l")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"events", "segments", "watermarks"}
    assert out["watermarks"]["exposures"] > 0


def _truncated(store: SqliteStore, root: Path) -> str:
    """A lake of the store's events whose first segment lost its second half (and footer)."""
    assert main(["lake", "flush", "--store", str(store.path), "--lake", str(root)]) == 0
    segment = Lake(root).manifest().segments[0].path
    path = root / segment
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return segment


def test_a_truncated_segment_is_named_in_one_line(
    store: SqliteStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lake"
    segment = _truncated(store, root)
    capsys.readouterr()
    assert main(["lake", "status", "--lake", str(root)]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["corrupt"][0]["path"] == segment
    assert segment in captured.err
    config = str(FIXTURES / "site.toml")
    assert main(["lake", "aggregate", config, "--lake", str(root)]) == 1
    err = _err(capsys)
    assert segment in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    registry = tmp_path / "reg"
    args = ["report", "--lake", str(root), "--store", str(store.path), "--registry", str(registry)]
    assert main([*args, "-o", str(tmp_path / "r.html")]) == 1
    err = _err(capsys)
    assert segment in err and len(err.strip().splitlines()) == 1


def test_sync_once_with_a_truncated_segment_fails_at_once(
    store: SqliteStore, tmp_path: Path
) -> None:
    root = tmp_path / "lake"
    segment = _truncated(store, root)
    args = [sys.executable, "-m", "cli.main", "sync", str(FIXTURES / "site.toml"), "--once"]
    args += ["--store", str(store.path), "--registry", str(tmp_path / "reg"), "--lake", str(root)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1, done.stderr
    unwrapped = done.stderr.replace("\n", "")  # rich folds the line at the terminal's width
    assert segment in unwrapped and "retrying" not in done.stderr
    assert "Traceback" not in done.stderr


def test_sync_takes_the_engine_from_the_environment_unless_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import origin.lake.engines as engines

    chosen: list[str | None] = []
    real = engines.engine

    def spy(name: str | None = None) -> engines.Engine:
        chosen.append(name)
        found = real(name)
        raise SystemExit(f"engine {found.name}")  # far enough: the round is not the point

    monkeypatch.setattr(engines, "engine", spy)
    base = ["sync", str(FIXTURES / "site.toml"), "--store", str(tmp_path / "e.db")]
    base += ["--registry", str(tmp_path / "reg"), "--lake", str(tmp_path / "lake"), "--once"]
    monkeypatch.setenv("EDGEPICK_LAKE_ENGINE", "spark")
    with pytest.raises(SystemExit, match="engine spark"):
        main(base)
    with pytest.raises(SystemExit, match="engine duckdb"):
        main([*base, "--lake-engine", "duckdb"])
    monkeypatch.setenv("EDGEPICK_LAKE_ENGINE", "hadoop")
    monkeypatch.setattr(engines, "engine", real)
    assert main(base) == 1
    err = _err(capsys)
    assert "'hadoop' is not one of duckdb, spark (from EDGEPICK_LAKE_ENGINE)" in err


def test_status_into_a_closed_pipe_exits_quietly(store: SqliteStore, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    assert main(["lake", "flush", "--store", str(store.path), "--lake", str(root)]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    status = [sys.executable, "-m", "cli.main", "lake", "status", "--lake", str(root)]
    proc = subprocess.Popen(
        status, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.close()  # `| head -0`: the reader is gone before anything was written
    err = proc.communicate(timeout=30)[1].decode()
    assert proc.returncode == 0 and "BrokenPipe" not in err and "Traceback" not in err, err
