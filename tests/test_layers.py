"""The packages' dependency arrows go one way (docs/architecture.md).

core <- compile <- origin <- cli, and core <- edge <- cli: ``core`` imports the standard library
and msgpack; ``edge`` imports ``core`` (and the Workers runtime's ``js``/``pyodide``/``workers``);
``compile`` imports ``core``; ``origin`` imports ``core`` and ``compile``, never ``edge``; only
``cli`` (and tests and benchmarks) imports ``cli``. Every import counts, including those inside
functions, and no module of core imports another that imports it back.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = {"core", "compile", "edge", "origin", "cli"}
RUNTIME = {"js", "pyodide", "workers"}  # provided by the Workers runtime, only in edge/
STDLIB = set(sys.stdlib_module_names)

# what each package may import besides the standard library and itself
ALLOWED: dict[str, set[str]] = {
    "core": {"msgpack"},
    "edge": {"core", *RUNTIME},
    "compile": {"core"},
    "origin": {"core", "compile"},  # plus any third-party package (so does cli)
    "cli": PROJECT,
}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) for every absolute import in ``path``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def violations(package: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imports(path):
            top = module.split(".")[0]
            if top in STDLIB or top == package or top in ALLOWED[package]:
                continue
            third_party = top not in PROJECT and top not in RUNTIME
            if package in ("origin", "cli") and third_party:
                continue
            bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return bad


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_follow_the_arrows(package: str) -> None:
    assert (ROOT / package / "__init__.py").exists()
    assert violations(package) == []


def test_the_checker_sees_a_wrong_arrow(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from origin.store import SqliteStore\n")
    assert imports(module) == [(2, "origin.store")]


def test_core_modules_import_no_cycle() -> None:
    """No two modules of core import each other (directly or through others)."""
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "core").glob("*.py"):
        deps = {m for _, m in imports(path) if m.startswith("core.")}
        graph[f"core.{path.stem}"] = deps
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        seen[node] = 1
        for dep in sorted(graph.get(node, ())):
            assert seen.get(dep) != 1, "import cycle: " + " -> ".join([*trail, node, dep])
            if dep not in seen:
                visit(dep, [*trail, node])
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen:
            visit(node, [])
