"""The worker bundle: web-vitals read from node_modules at build time into the page client."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from compile import bundle
from edge.client_js import CLIENT

MODULES = bundle.ROOT / "node_modules"


def served_client(out: Path) -> str:
    """What the bundled worker serves at /_edgepick/client.js (imported from the bundle)."""
    code = "import sys; from edge.client_js import SOURCE; sys.stdout.write(SOURCE)"
    done = subprocess.run(
        [sys.executable, "-B", "-c", code], cwd=out, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_bundle_carries_web_vitals_from_node_modules(tmp_path: Path) -> None:
    out = tmp_path / "worker"
    written = bundle.build(out)
    assert out / "edge" / "vitals_lib.py" in written
    library = (MODULES / "web-vitals" / "dist" / "web-vitals.iife.js").read_text()
    version = json.loads((MODULES / "web-vitals" / "package.json").read_text())["version"]
    served = served_client(out)
    code = library.split("//# sourceMappingURL=")[0].strip()
    assert served.startswith(f"/*! web-vitals {version} (Apache-2.0)")
    assert code in served and served.endswith(CLIENT)
    assert "sourceMappingURL" not in served
    # small: web-vitals (about 3.3 KB gzipped) and the client (about 2 KB)
    assert len(gzip.compress(served.encode(), 9)) < 6 * 1024


def test_served_client_is_valid_javascript(tmp_path: Path) -> None:
    out = tmp_path / "worker"
    bundle.build(out)
    script = tmp_path / "client.js"
    script.write_text(served_client(out))
    done = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_missing_node_modules_fails_clearly_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle, "ROOT", tmp_path / "checkout")
    monkeypatch.delenv("EDGEPICK_NODE_MODULES", raising=False)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "worker"
    out.mkdir()
    (out / "keep.txt").write_text("previous bundle")
    with pytest.raises(SystemExit) as failed:
        bundle.build(out)
    message = str(failed.value)
    assert "web-vitals not found" in message and "npm ci" in message
    assert str(tmp_path / "node_modules") in message
    assert (out / "keep.txt").read_text() == "previous bundle"


def test_node_modules_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "ROOT", tmp_path / "checkout")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDGEPICK_NODE_MODULES", str(MODULES))
    assert bundle.node_modules() == MODULES


def test_overlapping_builds_leave_one_complete_bundle_and_never_a_missing_file(
    tmp_path: Path,
) -> None:
    """wrangler dev's watcher starts a build per change it sees: builds that overlap take turns,
    and a reader never finds the bundle's entry missing or half written."""
    out = tmp_path / "worker"
    bundle.build(out)
    entry = (out / "entry_local.py").read_bytes()
    (out / "edge" / "gone.py").write_text("# a module removed from the sources\n")
    seen: list[bytes] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append((out / "entry_local.py").read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        builds = [
            subprocess.Popen([sys.executable, "-m", "compile.bundle", str(out)], cwd=bundle.ROOT)
            for _ in range(4)
        ]
        assert [b.wait(timeout=120) for b in builds] == [0, 0, 0, 0]
    finally:
        stop.set()
        reader.join()
    assert seen and all(data == entry for data in seen)
    assert not (out / "edge" / "gone.py").exists()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.py")) == sorted(
        bundle.contents()
    )
    assert not list(out.rglob("*.tmp"))


def bundle_with(out: Path, snapshot: Path) -> subprocess.CompletedProcess[str]:
    """``python -m compile.bundle OUT --snapshot FILE``, as wrangler's build step runs it."""
    command = [sys.executable, "-m", "compile.bundle", str(out), "--snapshot", str(snapshot)]
    return subprocess.run(command, cwd=bundle.ROOT, capture_output=True, text=True)


def test_a_bundled_snapshot_is_written_and_a_bad_one_refused(
    tmp_path: Path, fixture_blob: bytes
) -> None:
    out = tmp_path / "worker"
    (tmp_path / "site.snap").write_bytes(fixture_blob)
    done = bundle_with(out, tmp_path / "site.snap")
    assert done.returncode == 0, done.stderr
    code = "import sys; from edge.bundled import SNAPSHOT; sys.stdout.buffer.write(SNAPSHOT)"
    served = subprocess.run([sys.executable, "-B", "-c", code], cwd=out, capture_output=True)
    assert served.stdout == fixture_blob
    (tmp_path / "bad.snap").write_bytes(b"not a snapshot")
    before = (out / "edge" / "bundled.py").read_bytes()
    done = bundle_with(out, tmp_path / "bad.snap")
    assert done.returncode == 1 and "bad.snap" in done.stderr
    assert (out / "edge" / "bundled.py").read_bytes() == before  # nothing changed
    bundle.build(out)  # without a snapshot: no bundled module
    assert not (out / "edge" / "bundled.py").exists()
