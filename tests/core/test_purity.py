"""core/ stays pure: stdlib computation and msgpack only, no I/O, clock, randomness or JS."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "core"
ALLOWED = {
    "__future__",
    "base64",
    "binascii",
    "bisect",
    "itertools",
    "json",
    "linecache",  # core.generated registers generated source in its in-memory table only
    "operator",
    "collections",
    "dataclasses",
    "enum",
    "hashlib",
    "hmac",
    "math",
    "re",
    "sys",
    "typing",
    "msgpack",
    "core",
}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_only_pure_modules() -> None:
    modules = sorted(ROOT.glob("*.py"))
    assert len(modules) >= 10
    for path in modules:
        extra = imported(path) - ALLOWED
        assert not extra, f"{path.name} imports {sorted(extra)}"


def test_core_calls_no_clock_or_random_source() -> None:
    for path in ROOT.glob("*.py"):
        text = path.read_text()
        for banned in ("time.time", "datetime.now", "random.", "os.urandom", "secrets.", "open("):
            assert banned not in text, f"{path.name} uses {banned}"
