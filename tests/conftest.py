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
