"""Assemble the worker bundle: the two entries, ``core``, ``edge`` and pure-Python msgpack.

Wrangler uploads every ``.py`` under the main module's folder, so the bundle folder holds exactly
what the worker imports and nothing else. Run by wrangler's build step (wrangler.toml) and by
the tests: ``python -m compile.bundle [OUT]`` (default ``build/worker``).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "worker"
PACKAGES = ("core", "edge")


def _python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.py"))


def msgpack_folder() -> Path:
    """The installed msgpack's folder: its pure-Python fallback runs where the C part cannot."""
    spec = importlib.util.find_spec("msgpack")
    if spec is None or spec.origin is None:
        raise SystemExit("msgpack is not installed: run `make setup`")
    return Path(spec.origin).parent


def build(out: Path = DEFAULT_OUT) -> list[Path]:
    """Write the bundle into ``out`` (replacing it); returns the files written."""
    if out.exists():
        shutil.rmtree(out)
    written: list[Path] = []
    sources = {name: ROOT / name for name in PACKAGES}
    sources["msgpack"] = msgpack_folder()
    for name, folder in sources.items():
        (out / name).mkdir(parents=True)
        for source in _python_files(folder):
            written.append(out / name / source.name)
            shutil.copyfile(source, written[-1])
    for entry in _python_files(ROOT / "edge" / "entries"):
        written.append(out / entry.name)
        shutil.copyfile(entry, written[-1])
    return written


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    files = build(out)
    size = sum(f.stat().st_size for f in files)
    print(f"worker bundle: {len(files)} files, {size / 1024:.0f} KiB in {out}")


if __name__ == "__main__":
    main()
