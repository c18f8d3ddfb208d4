"""Run Python code inside Pyodide 0.28.2 (Node, real WebAssembly) with a worker bundle and extra
package folders on ``sys.path`` (``bench/pyodide_run.mjs``); the JSON the code evaluates to."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run_code(bundle: Path, packages: Mapping[str, Path], code: str, timeout: int = 1800) -> Any:
    """``code``'s last expression (a JSON string), decoded; exits with Node's error output."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        folders = {name: str(path) for name, path in packages.items()}
        config.write_text(json.dumps({"bundle": str(bundle), "packages": folders, "code": code}))
        done = subprocess.run(
            ["node", str(ROOT / "bench" / "pyodide_run.mjs"), str(config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if done.returncode != 0:
        raise SystemExit(f"bench/pyodide_run.mjs failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
