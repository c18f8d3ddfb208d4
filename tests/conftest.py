"""Shared test helpers: the GrowthBook conformance cases and the compiled fixture site."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Speed is measured in bench/, never here: no hypothesis deadline or too-slow health check, so a
# loaded machine cannot fail a run. Under CI (CI set) the examples are derandomized as well, so a
# CI run is repeatable; locally each run explores new examples.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", settings.get_profile("dev"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """No silent skips: a test that would skip (a missing tool, data set or case file) fails,
    with the skip's reason (which names the install command) as its message. ``make test``
    installs everything the suite needs, so a skip always means a broken setup."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"would have been skipped (no skips allowed): {reason}"
    return report
