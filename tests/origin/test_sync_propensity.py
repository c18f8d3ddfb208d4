"""``edgepick sync`` publishes each profile with its purchase-propensity bucket when a model is
in the registry (or given with ``--propensity``), and learns from a lake given with ``--lake``."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from core.profile import decode_profile, profile_key
from origin.shoppers import CUTOFF_MS, shop
from origin.store import SqliteStore
from tests.conftest import FIXTURES


def test_sync_publishes_profiles_with_their_propensity_bucket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SqliteStore(tmp_path / "events.db")
    shop(store, 300, seed=7)
    store.close()
    registry = tmp_path / "registry"
    registry.mkdir()
    site = str(FIXTURES / "site.toml")
    model = str(registry / "propensity.json")
    assert main(["propensity", "train", "--store", str(tmp_path / "events.db"), "--config", site,
                 "--cutoff-ms", str(CUTOFF_MS), "-o", model]) == 0  # fmt: skip
    kv = tmp_path / "kv"
    assert main(["sync", site, "--store", str(tmp_path / "events.db"), "--registry",
                 str(registry), "--target", f"dir:{kv}", "--once"]) == 0  # fmt: skip
    capsys.readouterr()
    state = decode_profile((kv / profile_key("su-000001")).read_bytes())
    assert state is not None
    assert [f for f in state.flags if f.startswith("propensity:")] in (
        ["propensity:high"],
        ["propensity:medium"],
        ["propensity:low"],
    )


def test_sync_learns_from_a_lake_given_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SqliteStore(tmp_path / "events.db")
    shop(store, 50, seed=3)
    store.close()
    lake = tmp_path / "lake"
    site = str(FIXTURES / "site.toml")
    assert main(["sync", site, "--store", str(tmp_path / "events.db"), "--registry",
                 str(tmp_path / "registry"), "--target", f"dir:{tmp_path / 'kv'}", "--once",
                 "--lake", str(lake)]) == 0  # fmt: skip
    capsys.readouterr()
    assert (lake / "_aggregates").is_dir()  # the round kept its aggregates in the lake
