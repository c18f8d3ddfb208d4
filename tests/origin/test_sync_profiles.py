"""The sync round's profiles step: hostile user ids publish, a failing profile is skipped."""

from __future__ import annotations

from pathlib import Path

from core.events import identify_event, page_view
from core.profile import decode_profile, profile_key
from origin.registry import Registry
from origin.store import SqliteStore
from origin.sync import SyncJob, run_round
from origin.targets import DirTarget, TargetError
from tests.conftest import FIXTURES
from tests.origin.helpers import NOW_MS

USERS = ["u 1", "..", "../x", "a", "a/b", "nul\x00id", "é-user"]


def _job(tmp_path: Path, targets: list[object]) -> SyncJob:
    store = SqliteStore(tmp_path / "events.db")
    events = []
    for i, user in enumerate(USERS):
        events.append(page_view(f"pv-{i}", f"v-{i}", NOW_MS + i, "/c/running", "running"))
        events.append(identify_event(f"v-{i}", user, NOW_MS + 100 + i))
    store.append(events)
    return SyncJob(
        config=FIXTURES / "site.toml",
        store=store,
        registry=Registry(tmp_path / "reg"),
        targets=targets,  # type: ignore[arg-type]
        model=FIXTURES / "model.json",
        clock=lambda: NOW_MS / 1000 + 3600,
    )


def test_hostile_user_ids_are_published_under_encoded_keys(tmp_path: Path) -> None:
    kv = DirTarget(tmp_path / "kv")
    result = run_round(_job(tmp_path, [kv]))
    assert result.profile_errors == [] and result.profiles == len(USERS)
    for user in USERS:
        profile = decode_profile(kv.get(profile_key(user)) or b"")
        assert profile is not None and profile.user_id == user


class _Refusing(DirTarget):
    """A target whose store refuses one key (a full disk, a permission, a remote error)."""

    def put(self, key: str, value: bytes) -> None:
        if key == profile_key("a"):
            raise TargetError(f"{key}: refused")
        super().put(key, value)


def test_a_failing_profile_is_reported_and_skipped_not_fatal(tmp_path: Path) -> None:
    steps: list[str] = []
    kv = _Refusing(tmp_path / "kv")
    result = run_round(_job(tmp_path, [kv]), steps.append)
    assert steps[-2:] == ["profiles", "monitor"]  # the round went on to its monitors
    assert result.profiles == len(USERS) - 1
    assert len(result.profile_errors) == 1 and "'a'" in result.profile_errors[0]
    assert kv.get(profile_key("a/b")) is not None and kv.get(profile_key("a")) is None
