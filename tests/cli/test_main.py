from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from core.snapshot import decode_snapshot
from tests.conftest import FIXTURES


def test_compile_then_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "site.snap"
    assert (
        main(
            [
                "compile",
                str(FIXTURES / "site.toml"),
                "--model",
                str(FIXTURES / "model.json"),
                "-o",
                str(out),
                "--message",
                "first",
            ]
        )
        == 0
    )
    snap = decode_snapshot(out.read_bytes())
    assert snap.header.message == "first" and snap.header.created > 0
    assert snap.header.id in capsys.readouterr().out
    assert main(["explain", str(out), "--persona", "cart_abandoner", "--now", "1790000000"]) == 0
    text = capsys.readouterr().out
    assert "audiences matched: mobile, cart_abandoners" in text
    assert "[promo] -> promo-free-shipping  (p=1.0000, rule" in text
    assert (
        main(
            [
                "explain",
                str(out),
                "--json",
                "--now",
                "1790000000",
                "--slots",
                "cta",
                "--visitor",
                '{"visits": 2, "context": {"device": "mobile"}}',
            ]
        )
        == 0
    )
    line = json.loads(capsys.readouterr().out)
    assert [d["slot"] for d in line["decisions"]] == ["cta"]


def test_errors_exit_nonzero_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[site]\nname = "x"\n[slots.a]\ngranularity = "widget"\n'
        '[[slots.a.variants]]\nid = "v"\ncontent = ""\n'
    )
    assert main(["compile", str(bad), "-o", str(tmp_path / "x.snap")]) == 1
    err = capsys.readouterr().err
    assert "slots.a.granularity: must be one of: page, component, element (got 'widget')" in err
    garbage = tmp_path / "garbage.snap"
    garbage.write_bytes(b"\x00\x01nonsense")
    assert main(["explain", str(garbage)]) == 1
    assert "not valid msgpack" in capsys.readouterr().err


def test_schema_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "edgepick site config"


def test_preview_token(capsys: pytest.CaptureFixture[str]) -> None:
    from core import preview

    assert (
        main(
            [
                "preview-token",
                "--persona",
                "loyal_runner",
                "--variant",
                "hero=hero-yoga",
                "--key",
                "k",
                "--ttl",
                "60",
            ]
        )
        == 0
    )
    token = capsys.readouterr().out.strip()
    found, reason = preview.decode(token, b"k", 0)
    assert reason == "ok" and found is not None
    assert found.variants == {"hero": "hero-yoga"} and found.persona["visits"] == 5
    assert preview.decode(token, b"other", 0)[1] == "bad signature"
    assert main(["preview-token", "--variant", "hero", "--key", "k"]) == 1
