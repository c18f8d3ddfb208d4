"""What a user installs is what was tested: the base wheel, the lock file, the tracked files.

The wheel is built from this checkout, and the base install (no extras) made from uv.lock into a
scratch virtualenv, not editable, offline from the cache ``make setup`` filled: nothing here
reaches a registry.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UV = ROOT / "build" / "uv" / "bin" / "uv"
# what must never be tracked: environments, dependencies, build output, bytecode, local state
GENERATED = re.compile(
    r"(^|/)(\.venv|venv|node_modules|build|dist|out|\.wrangler|__pycache__|[^/]+\.egg-info)/"
    r"|\.(pyc|pyo|so|whl)$|(^|/)\.dev\.vars$"
)


def _uv() -> str:
    found = str(UV) if UV.exists() else shutil.which("uv")
    assert found, "uv is not installed: run `make setup`"
    return found


def _env() -> dict[str, str]:
    return {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}


def test_no_environment_build_output_or_bytecode_is_tracked() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(tracked) > 50
    assert [f for f in tracked if GENERATED.search(f)] == []


def test_the_pattern_catches_what_it_must() -> None:
    for bad in (
        ".venv/bin/mypy",
        "node_modules/x/y.js",
        "core/__pycache__/a.cpython-311.pyc",
        "build/worker/entry.py",
        "edgepick.egg-info/PKG-INFO",
        "x.so",
        ".dev.vars",
    ):
        assert GENERATED.search(bad), bad
    for good in ("core/engine.py", "bench/build_table.py", "docs/build.md"):
        assert not GENERATED.search(good), good


def test_lock_file_pins_every_dependency_of_pyproject() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {p["name"]: p for p in lock["package"]}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    for spec in wanted:
        name = re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0].lower().replace("_", "-")
        assert name in locked, f"{name} is not in uv.lock: run `make lock`"
        assert locked[name].get("version"), name
        assert locked[name].get("wheels") or locked[name].get("sdist"), name
    check = subprocess.run(
        [_uv(), "lock", "--check", "--offline"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, f"uv.lock is out of date with pyproject.toml:\n{check.stderr}"


@pytest.fixture(scope="module")
def base_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch virtualenv holding the base wheel (``pip install edgepick``) and nothing else."""
    work = tmp_path_factory.mktemp("wheel")
    uv = _uv()
    # a copy of the files git knows (tracked or new, not ignored): what a clone would build from,
    # with no build/ or egg-info left over from an earlier build
    source = work / "source"
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [uv, "build", "--wheel", "--offline", "-q", "-o", str(work / "dist"), str(source)],
        env=_env(),
        check=True,
        cwd=source,
    )
    venv = work / "venv"
    # the locked base install: no extras, no dev group, the project built as a wheel
    subprocess.run(
        [
            uv,
            "sync",
            "-q",
            "--frozen",
            "--offline",
            "--no-editable",
            "--no-dev",
            "--project",
            str(source),
        ],
        env={**_env(), "UV_PROJECT_ENVIRONMENT": str(venv)},
        check=True,
    )
    return venv


def _installed(venv: Path) -> list[str]:
    out = subprocess.run(
        [_uv(), "pip", "list", "--format", "freeze", "--python", str(venv / "bin" / "python")],
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(line.split("==")[0].lower() for line in out.splitlines() if line)


def test_base_wheel_installs_msgpack_alone(base_install: Path) -> None:
    packages = _installed(base_install)
    assert packages == ["edgepick", "msgpack"]  # the bar is < 10


def test_installed_wheel_explains_a_persona_from_its_embedded_defaults(
    base_install: Path, tmp_path: Path
) -> None:
    """From an empty folder, no checkout in sight: compile the sample site, explain a persona."""
    bin_ = base_install / "bin"
    site = subprocess.run(
        [str(bin_ / "python"), "-c", "from compile import defaults; print(defaults.folder())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(site).is_relative_to(base_install), site  # the wheel's copy, not the checkout's
    subprocess.run(
        [
            str(bin_ / "edgepick"),
            "compile",
            f"{site}/site.toml",
            "--model",
            f"{site}/model.json",
            "-o",
            "site.snap",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    explained = subprocess.run(
        [str(bin_ / "edgepick"), "explain", "site.snap", "--persona", "loyal_runner", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert explained.returncode == 0, explained.stderr
    assert "loyal_runner" in explained.stdout and '"hero"' in explained.stdout


def test_installed_wheel_says_which_extra_an_origin_command_needs(
    base_install: Path, tmp_path: Path
) -> None:
    run = subprocess.run(
        [str(base_install / "bin" / "edgepick"), "serve", "--secret", "s", "--store", "e.db"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert "pip install 'edgepick[origin]'" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_installed_wheel_builds_a_worker_bundle_with_its_entry(
    base_install: Path, tmp_path: Path
) -> None:
    out = tmp_path / "worker"
    subprocess.run(
        [str(base_install / "bin" / "python"), "-m", "compile.bundle", str(out)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        # web-vitals comes from npm at build time: the checkout's node_modules (`npm ci`)
        env={**_env(), "EDGEPICK_NODE_MODULES": str(ROOT / "node_modules")},
    )
    names = {p.relative_to(out).as_posix() for p in out.rglob("*.py")}
    assert {"entry.py", "core/engine.py", "edge/handler.py", "msgpack/fallback.py"} <= names
    assert "edge/vitals_lib.py" in names


def test_wheel_carries_entries_and_defaults(base_install: Path) -> None:
    wheel = next((base_install.parent / "dist").glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "edge/entries/entry.py",
        "compile/sample/personas.toml",
        "compile/sample/site.toml",
        "compile/config.schema.json",
        "cli/main.py",
    } <= names
