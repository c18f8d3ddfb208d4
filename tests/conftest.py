"""Shared test helpers: the GrowthBook conformance cases and the compiled fixture site."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT.parent / "shared" / "conformance" / "growthbook-cases.json"
FIXTURES = ROOT / "fixtures"


def conformance_cases(section: str) -> list[Any]:
    """The cases of one section, or one skipped placeholder when the file is absent."""
    if not CONFORMANCE.exists():
        return [
            pytest.param(
                None,
                marks=pytest.mark.skip(
                    reason=f"GrowthBook conformance cases not found at {CONFORMANCE}"
                ),
            )
        ]
    cases = json.loads(CONFORMANCE.read_text())[section]
    return [pytest.param(case, id=f"{i}:{case[0]}"[:80]) for i, case in enumerate(cases)]


@pytest.fixture(scope="session")
def fixture_blob() -> bytes:
    from compile.build import build_snapshot

    return build_snapshot(FIXTURES / "site.toml", FIXTURES / "model.json", author="tests")


@pytest.fixture(scope="session")
def engine(fixture_blob: bytes) -> Any:
    from core.engine import Engine

    return Engine.from_bytes(fixture_blob)
