"""``edgepick precompute``: the off-peak job writes the table under ``precomputed/<snapshot>``
for the snapshot it was given, reports its hit rate on other demo traffic, and refuses a bad
mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from core.precomputed import decode_table
from core.snapshot import decode_header


def test_the_job_publishes_the_table(
    tmp_path: Path, fixture_blob: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    snap = tmp_path / "site.snap"
    snap.write_bytes(fixture_blob)
    sid = decode_header(fixture_blob)[0].id
    args = ["precompute", str(snap), "--visitors", "800", "--target", f"dir:{tmp_path / 'kv'}"]
    assert main([*args, "--mode", "budget:1500"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["key"] == f"precomputed/{sid}" and report["mode"] == "budget:1500"
    assert report["hit_rate_on_other_demo_traffic"] > 0.85
    found = decode_table((tmp_path / "kv" / "precomputed" / sid).read_bytes(), sid)
    assert found is not None and len(found[0]) == report["entries"] and found[1] == "budget:1500"
    assert main([*args, "--mode", "sometimes"]) == 1
    assert "mode" in capsys.readouterr().err
