"""``edgepick diff`` says in words what changes for visitors, and ``--json`` gives the same."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

from cli.main import main
from compile.site import compile_site, load_model
from core.snapshot import encode_snapshot
from origin.diff import for_visitors, words
from tests.conftest import FIXTURES

BASE = tomllib.loads((FIXTURES / "site.toml").read_text())
MODEL = load_model(FIXTURES / "model.json")


def _changed() -> dict[str, Any]:
    config = copy.deepcopy(BASE)
    config["site"]["holdout"] = 0.1
    cta = config["slots"]["cta"]["variants"]
    cta[0]["weight"], cta[1]["weight"] = 0.55, 0.05  # 25% / 25% before
    cta[2]["status"] = "paused"
    config["slots"]["cta"].setdefault("rules", []).append(
        {"audience": "staff", "action": "force", "variant": "cta-explore"}
    )
    return config


def test_words_say_what_visitors_will_see_differently() -> None:
    said = "\n".join(
        words(for_visitors(compile_site(BASE, MODEL), compile_site(_changed(), MODEL)))
    )
    assert "Holdout: 5% -> 10% of visitors see only the defaults." in said
    assert "cta: variant cta-find-yours active -> paused; nobody sees it any more." in said
    assert "cta: new rule, visitors in staff always see cta-explore." in said
    # the fixed split over the active variants, in percentage points
    line = next(x for x in said.splitlines() if x.startswith("cta, everyone:"))
    assert "cta-shop-now" in line and "(was 25%" in line and "pp)" in line
    assert words(for_visitors(compile_site(BASE, MODEL), compile_site(BASE, MODEL))) == []


def test_thompson_segments_and_learned_shifts_are_per_audience() -> None:
    model = copy.deepcopy(MODEL)
    weights = model["slots"]["headline"]["segments"]["mobile"]
    weights["hl-classic"], weights["hl-fast-shipping"] = 0.55, 0.12
    changes = for_visitors(compile_site(BASE, MODEL), compile_site(BASE, model))
    moved = changes["slots"]["headline"]["allocation"]["mobile visitors"]
    assert moved["hl-classic"][1] > moved["hl-classic"][0] + 0.3
    (line,) = words(changes)
    assert (
        line.startswith("headline, mobile visitors: ")
        and "hl-classic 52% (was 13%, +39 pp)" in line
    )
    assert "everyone" not in changes["slots"]["headline"]["allocation"]


def test_cli_diff_prints_words_and_json(tmp_path: Path, capsys: Any) -> None:
    a, b = tmp_path / "a.snap", tmp_path / "b.snap"
    a.write_bytes(encode_snapshot(compile_site(BASE, MODEL)))
    b.write_bytes(encode_snapshot(compile_site(_changed(), MODEL)))
    reg = ["--registry", str(tmp_path / "reg")]
    assert main(["diff", str(a), str(b), *reg]) == 0
    out = capsys.readouterr().out
    assert "what changes for visitors" in out and "Holdout: 5% -> 10%" in out
    assert main(["diff", str(a), str(b), "--json", *reg]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["site"]["holdout"] == [0.05, 0.1]
    assert data["slots"]["cta"]["variants"]["lifecycle"] == {"cta-find-yours": ["active", "paused"]}
    assert main(["diff", str(a), str(b), "--detail", *reg]) == 0
    assert "weight[cta-shop-now]" in capsys.readouterr().out


def test_diff_is_the_same_text_in_every_process(tmp_path: Path) -> None:
    """Set iteration order changes with the hash seed; the words must not (found in review)."""
    import os
    import subprocess
    import sys

    a, b = tmp_path / "a.snap", tmp_path / "b.snap"
    a.write_bytes(encode_snapshot(compile_site(BASE, None)))
    b.write_bytes(encode_snapshot(compile_site(BASE, MODEL)))
    outputs = set()
    for seed in ("1", "2", "3", "4"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "diff",
                str(a),
                str(b),
                "--detail",
                "--registry",
                str(tmp_path / "reg"),
            ],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parents[2],
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    text = outputs.pop()
    assert "mobile.weight[hl-fast-shipping]" in text  # --detail: segment weights too
