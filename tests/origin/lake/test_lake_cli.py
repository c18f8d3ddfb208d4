"""`edgepick lake flush|compact|aggregate|status` on a store of generated traffic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from origin.store import SqliteStore
from tests.conftest import FIXTURES


def _json(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_flush_aggregate_status_compact(
    store: SqliteStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = str(tmp_path / "lake")
    assert main(["lake", "flush", "--store", str(store.path), "--lake", lake]) == 0
    flushed = _json(capsys)
    assert flushed["events"] == len(store.ids()) and flushed["watermarks"]["exposures"] > 0
    config = str(FIXTURES / "site.toml")
    assert main(["lake", "aggregate", config, "--lake", lake, "--reward", "click=1"]) == 0
    first = _json(capsys)
    assert first["rows"] == store.count("exposure") and first["recomputed"] is not None
    assert {a["slot"] for a in first["arms"]} >= {"hero", "headline", "headline@mobile"}
    assert main(["lake", "aggregate", config, "--lake", lake, "--store", str(store.path)]) == 0
    again = _json(capsys)
    assert again["recomputed"] is None and again["arms"] == first["arms"]  # nothing new
    assert main(["lake", "status", "--lake", lake]) == 0
    status = _json(capsys)
    assert status["rows"] == len(store.ids()) and status["segments"] > 1
    # the traffic's days are long closed: each hour is compacted into one segment
    args = ["lake", "compact", "--lake", lake, "--store", str(store.path), "--drop-hot-after", "7"]
    assert main(args) == 0
    compacted = _json(capsys)
    assert compacted["segments_after"] == status["hours"] < compacted["segments_before"]
    assert compacted["hot_rows_dropped"] > 0


def test_serve_and_consume_need_a_nats_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EDGEPICK_NATS_URL", raising=False)
    with pytest.raises(SystemExit, match="pass --nats URL or set EDGEPICK_NATS_URL"):
        main(["lake", "consume", "--store", str(tmp_path / "e.db")])
