from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from compile.site import compile_site, load_model, load_toml
from core.snapshot import decode_header, encode_snapshot
from origin.diff import diff_sites
from origin.publish import CURRENT_KEY, PublishError, publish, rollback
from origin.registry import Registry, RegistryError
from origin.targets import DirTarget, TargetError, parse_target
from tests.conftest import FIXTURES


def variant_blob(epoch: int, parent: str = "", message: str = "") -> bytes:
    config = load_toml(FIXTURES / "site.toml")
    config["site"]["epoch"] = epoch
    site = compile_site(config, load_model(FIXTURES / "model.json"))
    return encode_snapshot(site, parent=parent, created=1000 + epoch, author="t", message=message)


class FailingPointer(DirTarget):
    """A target that dies when the pointer is written (the process killed between the writes)."""

    def put(self, key: str, value: bytes) -> None:
        if key == CURRENT_KEY:
            raise TargetError(f"{self.name}: simulated crash before moving {key}")
        super().put(key, value)

    def put_many(self, items: Mapping[str, bytes]) -> None:
        raise AssertionError("not used")


def test_publish_writes_blob_then_pointer_and_audits(tmp_path: Path, fixture_blob: bytes) -> None:
    registry = Registry(tmp_path / "reg")
    kv = DirTarget(tmp_path / "kv")
    done = publish(fixture_blob, [kv], registry, author="alice")
    sid = done.header.id
    assert kv.get(f"snap/{sid}") == fixture_blob and kv.get(CURRENT_KEY) == sid.encode()
    assert registry.current() == sid and done.previous is None
    (entry,) = list(registry.audit_log())
    assert entry["action"] == "publish" and entry["id"] == sid and entry["author"] == "alice"


def test_interrupted_publish_leaves_pointer_on_the_previous_complete_snapshot(
    tmp_path: Path, fixture_blob: bytes
) -> None:
    registry = Registry(tmp_path / "reg")
    kv_root = tmp_path / "kv"
    first = publish(fixture_blob, [DirTarget(kv_root)], registry).header.id
    second = variant_blob(1, parent=first)
    with pytest.raises(PublishError, match="still point at"):
        publish(second, [FailingPointer(kv_root)], registry)
    kv = DirTarget(kv_root)
    pointer = kv.get(CURRENT_KEY)
    assert pointer == first.encode() and registry.current() == first
    blob = kv.get(f"snap/{pointer.decode()}")
    assert blob is not None and decode_header(blob)[0].id == first  # complete and valid
    new_id = decode_header(second)[0].id
    assert kv.get(f"snap/{new_id}") == second  # the blob was written, the pointer not moved
    assert [e["action"] for e in registry.audit_log()] == ["publish", "publish-failed"]


def test_blob_failure_moves_no_pointer_on_any_target(tmp_path: Path, fixture_blob: bytes) -> None:
    class Broken(DirTarget):
        def put(self, key: str, value: bytes) -> None:
            raise OSError("disk full")

    registry = Registry(tmp_path / "reg")
    good = DirTarget(tmp_path / "good")
    with pytest.raises(PublishError, match="no pointer was moved"):
        publish(fixture_blob, [good, Broken(tmp_path / "bad")], registry)
    assert good.get(CURRENT_KEY) is None and registry.current() is None


def test_rollback_moves_the_pointer_back(tmp_path: Path, fixture_blob: bytes) -> None:
    registry = Registry(tmp_path / "reg")
    kv = DirTarget(tmp_path / "kv")
    first = publish(fixture_blob, [kv], registry).header.id
    second = publish(variant_blob(2, parent=first), [kv], registry).header.id
    assert kv.get(CURRENT_KEY) == second.encode() and second != first
    done = rollback(registry, first[:6], [kv])
    assert done.header.id == first and done.previous == second
    assert kv.get(CURRENT_KEY) == first.encode() and registry.current() == first
    assert [e["action"] for e in registry.audit_log()] == ["publish", "publish", "rollback"]
    with pytest.raises(RegistryError, match="not in the registry"):
        rollback(registry, "ffffffff", [kv])


def test_registry_history_and_diff(tmp_path: Path, fixture_blob: bytes) -> None:
    registry = Registry(tmp_path / "reg")
    a = registry.add(fixture_blob)
    config = load_toml(FIXTURES / "site.toml")
    config["slots"]["headline"]["variants"][1]["status"] = "paused"
    config["slots"]["promo"]["rules"].pop(0)
    model = load_model(FIXTURES / "model.json")
    model["slots"]["headline"]["weights"]["hl-classic"] = 0.5
    b_blob = encode_snapshot(compile_site(config, model), parent=a.id, created=5, message="tweak")
    b = registry.add(b_blob)
    assert [h.id for h in registry.headers()] == [b.id, a.id]
    assert registry.header(b.id[:8]).parent == a.id
    sites = [
        compile_site(load_toml(FIXTURES / "site.toml"), load_model(FIXTURES / "model.json")),
        compile_site(config, model),
    ]
    text = "\n".join(diff_sites(sites[0], sites[1]))
    variant = load_toml(FIXTURES / "site.toml")["slots"]["headline"]["variants"][1]["id"]
    assert f"~ variant {variant}: active -> paused" in text
    assert "- rule: audience eu excludes promo-price-match" in text
    assert "~ weight[hl-classic] 0.3100 -> 0.5000" in text
    assert diff_sites(sites[0], sites[0]) == []


def test_parse_target_errors_name_the_problem(tmp_path: Path) -> None:
    assert isinstance(parse_target(f"dir:{tmp_path}"), DirTarget)
    with pytest.raises(TargetError, match="unknown kind 's3'"):
        parse_target("s3:bucket")
    with pytest.raises(TargetError, match="unknown option"):
        parse_target(f"dir:{tmp_path},binding=X")
    with pytest.raises(TargetError, match="ACCOUNT_ID/NAMESPACE_ID"):
        parse_target("cloudflare:only-account")
    with pytest.raises(TargetError, match="key"):
        DirTarget(tmp_path).put("../escape", b"x")
