"""Lake test setup: generated traffic with real decisions on the fixture site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from compile.site import compile_site, load_model, load_toml
from core.engine import Engine
from core.model import Site
from origin.lake.traffic import events
from origin.learn import widths
from origin.store import SqliteStore
from tests.conftest import FIXTURES

START_MS = 1_790_000_000_000


@pytest.fixture(scope="session")
def site() -> Site:
    config = load_toml(FIXTURES / "site.toml")
    return compile_site(config, load_model(FIXTURES / "model.json"), str(FIXTURES / "site.toml"))


@pytest.fixture(scope="session")
def slot_widths(site: Site) -> dict[str, int]:
    return widths(site)


@pytest.fixture(scope="session")
def traffic(engine: Engine) -> list[dict[str, Any]]:
    """About 4,600 events over two days: 300 visitors and 2 heavy ones past the visitor cap."""
    return list(events(engine, 300, START_MS, seed=1))


def fill(store: SqliteStore, batch: list[dict[str, Any]]) -> None:
    for i in range(0, len(batch), 400):
        store.append(batch[i : i + 400])


@pytest.fixture
def store(tmp_path: Path, traffic: list[dict[str, Any]]) -> SqliteStore:
    found = SqliteStore(tmp_path / "events.db")
    fill(found, traffic)
    return found
