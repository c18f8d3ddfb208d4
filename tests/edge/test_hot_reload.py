"""``wrangler dev`` with the project's build step survives edits: a burst of saves to a watched
file rebuilds the bundle (builds take turns, files are swapped atomically: compile.bundle) and
the worker serves the last edit, without wrangler exiting.

Run on a copy of the sources in a temporary folder, so the checkout is never edited."""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
import urllib.request
from pathlib import Path

from cli.devstack import ROOT, free_port, start_wrangler

WRANGLER_TOML = """name = "edgepick-reload"
main = "build/worker/entry_local.py"
compatibility_date = "2024-11-06"
compatibility_flags = ["python_workers"]

[build]
command = "EDGEPICK_NODE_MODULES={modules} {python} -m compile.bundle"
watch_dir = ["core", "edge"]

[[kv_namespaces]]
binding = "SNAPSHOTS"
id = "reload-snapshots"
"""


def served_client(port: int) -> str:
    url = f"http://127.0.0.1:{port}/_edgepick/client.js"
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def test_a_burst_of_edits_reloads_the_worker_without_killing_wrangler(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    for package in ("core", "edge", "compile"):
        shutil.copytree(ROOT / package, checkout / package, ignore=shutil.ignore_patterns("*.pyc"))
    config = checkout / "wrangler.toml"
    config.write_text(WRANGLER_TOML.format(modules=ROOT / "node_modules", python=sys.executable))
    port = free_port()
    worker = start_wrangler(port, tmp_path / "kv", {}, tmp_path, config=config, cwd=checkout)
    try:
        assert "edgepick page client" in served_client(port)
        client = checkout / "edge" / "client_js.py"
        original = client.read_text()
        for edit in range(1, 6):  # an editor saving five times in half a second
            client.write_text(original + f'\nSOURCE += "// reload {edit}\\n"\n')
            time.sleep(0.1)
        deadline = time.monotonic() + 90
        served = ""
        while time.monotonic() < deadline and not served.endswith("// reload 5\n"):
            assert worker.alive(), f"wrangler exited:\n{worker.tail()}"
            with contextlib.suppress(OSError):  # reloading: the new worker is not up yet
                served = served_client(port)
            time.sleep(0.5)
        assert served.endswith("// reload 5\n"), worker.tail()
        assert worker.alive()
    finally:
        worker.stop()
