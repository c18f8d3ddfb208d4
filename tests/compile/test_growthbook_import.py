"""``edgepick import growthbook``: every visitor of a generated population gets, from the
imported snapshot, the value GrowthBook's JavaScript SDK gives on the original payload."""

from __future__ import annotations

import json
import random
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from cli.main import main
from compile.growthbook import import_payload, to_toml
from compile.site import compile_site
from core.decide import decide
from core.engine import Engine
from core.features import RequestContext, VisitorState, attributes
from core.snapshot import decode_snapshot, encode_snapshot

PAYLOAD_FILE = Path(__file__).parents[1] / "cases" / "growthbook_payload.json"
ORACLE = Path(__file__).with_name("gb_features.cjs")
NOW = 1_790_000_000
SKIPPED = {"new-nav", "old-hash", "two-tests", "in-namespace"}


def _population(n: int, seed: int = 7) -> list[tuple[VisitorState, RequestContext]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        vid = "".join(rng.choice("0123456789abcdef") for _ in range(16))
        if i % 50 == 0:
            vid = rng.choice(["v-staff-1", "v-staff-2", "visitor-😀-" + str(i), "é" + vid])
        visits = rng.choice([0, 1, 2, 3, 5, 9])
        state = VisitorState(vid, visits=visits, page_views=visits * 2, last_seen=NOW - 3600)
        context = RequestContext(
            path="/",
            device=rng.choice(["desktop", "mobile", "tablet"]),
            country=rng.choice(["US", "DE", "AT", "SE", "FI", "FR", "BR", ""]),
            utm_source=rng.choice(["", "newsletter", "google", "news-weekly"]),
        )
        out.append((state, context))
    return out


def _js_values(payload: dict[str, Any], docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["node", str(ORACLE)],
        input=json.dumps({"payload": payload, "visitors": docs}),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    values: list[dict[str, Any]] = json.loads(done.stdout)
    return values


def test_imported_snapshot_gives_every_visitor_the_js_sdks_value(tmp_path: Path) -> None:
    payload = json.loads(PAYLOAD_FILE.read_text())
    config, skipped = import_payload(payload)
    assert set(skipped) == SKIPPED, skipped
    # through TOML and the compiler, as `edgepick import` then `edgepick compile` would
    text = to_toml(config)
    site = compile_site(tomllib.loads(text), None)
    engine = Engine.from_site(decode_snapshot(encode_snapshot(site)).site)
    imported = [k for k in payload["features"] if k not in SKIPPED]
    content = {(slot.name, v.id): v.content for slot in engine.site.slots for v in slot.variants}
    population = _population(3000)
    docs = [attributes(s, c, NOW, engine.site.signals) for s, c in population]
    expected = _js_values(payload, docs)
    mismatches = []
    seen: dict[str, set[str]] = {k: set() for k in imported}
    for (state, context), doc, want in zip(population, docs, expected, strict=True):
        for d in decide(engine, state, context, NOW, imported):
            original = want[d.slot]
            text_value = content[(d.slot, d.variant)]
            got = text_value if isinstance(original, str) else json.loads(text_value)
            seen[d.slot].add(json.dumps(got, sort_keys=True))
            if got != original:
                mismatches.append((doc, d.slot, got, original))
    assert mismatches == []
    # the population reaches every value: forced ones, each variation, the default
    assert len(seen["hero-copy"]) == 6 and len(seen["checkout-button"]) == 2
    assert len(seen["free-shipping-threshold"]) == 3


def test_import_command_writes_a_config_that_compiles_and_reports_what_it_skipped(
    tmp_path: Path, capsys: Any
) -> None:
    out = tmp_path / "site.toml"
    assert main(["import", "growthbook", str(PAYLOAD_FILE), "-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert "imported 3 features" in printed.out
    for key in SKIPPED:
        assert key in printed.err
    assert "coverage 0.3" in printed.err and "hash version 1" in printed.err
    assert main(["compile", str(out), "-o", str(tmp_path / "site.snap")]) == 0


def test_a_payload_without_features_is_a_clear_error(tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"feature": {}}')
    assert main(["import", "growthbook", str(bad), "-o", str(tmp_path / "x.toml")]) == 1
    assert '"features"' in capsys.readouterr().err
