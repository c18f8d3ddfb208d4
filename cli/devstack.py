"""Run the local stack: the sample store origin and the worker under ``wrangler dev``.

Used by ``make demo``, the end-to-end tests and the load tests. Every process starts in its own
process group on 127.0.0.1 and is stopped with the whole group, so nothing outlives its owner.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from compile import defaults
from origin.targets import quiet_env

ROOT = Path(__file__).resolve().parent.parent
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A child process in its own process group, with its output in a log file.

    ``piped``: stdin and stdout are pipes to talk to it through (only stderr goes to the log).
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path = ROOT,
        piped: bool = False,
    ) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._out = log.open("wb")
        self.popen = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=dict(env or os.environ),
            stdout=subprocess.PIPE if piped else self._out,
            stderr=self._out if piped else subprocess.STDOUT,
            stdin=subprocess.PIPE if piped else subprocess.DEVNULL,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 5.0) -> None:
        if self.alive():
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.popen.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(timeout)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._out.close()


def wait_http(
    url: str, process: Process, timeout: float = 90.0, ok: tuple[int, ...] = (200,)
) -> None:
    """Poll ``url`` until it answers one of ``ok``; raise with the log's tail if it never does."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                if response.status in ok:
                    return
                last = f"status {response.status}"
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return
            last = f"status {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.3)
    raise TimeoutError(f"{process.name} not ready at {url} ({last}):\n{process.tail()}")


def start_store(port: int, logs: Path) -> Process:
    process = Process(
        "sample store",
        [sys.executable, str(defaults.path("store_origin.py")), "--port", str(port)],
        logs / "store.log",
    )
    wait_http(f"http://127.0.0.1:{port}/", process, timeout=20)
    return process


def start_wrangler(
    port: int,
    persist: Path,
    variables: Mapping[str, str],
    logs: Path,
    ready_path: str = "/_edgepick/health",
    timeout: float = 120.0,
) -> Process:
    """``wrangler dev`` on 127.0.0.1:port with local KV in ``persist``; ready when it answers."""
    args = [
        str(WRANGLER),
        "dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--inspector-port",
        str(free_port()),
        "--persist-to",
        str(persist),
    ]
    for name, value in variables.items():
        args += ["--var", f"{name}:{value}"]
    process = Process("wrangler dev", args, logs / f"wrangler-{port}.log", quiet_env())
    wait_http(f"http://127.0.0.1:{port}{ready_path}", process, timeout=timeout, ok=(200, 503))
    return process


def main() -> None:
    """``make dev``: the sample store on :8788, the worker on :8787, the fixture published."""
    import secrets

    state = ROOT / ".wrangler" / "state"
    logs = ROOT / "out" / "logs"
    snapshot = ROOT / "out" / "site.snap"
    run = [sys.executable, "-m", "cli.main"]
    subprocess.run(
        [
            *run,
            "compile",
            "fixtures/site.toml",
            "--model",
            "fixtures/model.json",
            "-o",
            str(snapshot),
        ],
        cwd=ROOT,
        check=True,
    )
    subprocess.run(
        [
            *run,
            "publish",
            str(snapshot),
            "--target",
            f"wrangler:{state}",
            "--registry",
            str(ROOT / "out" / "registry"),
            "--message",
            "make dev",
        ],
        cwd=ROOT,
        check=True,
    )
    variables = (
        {}
        if (ROOT / ".dev.vars").exists()
        else {"COOKIE_KEYS": f"dev:{secrets.token_hex(16)}", "PREVIEW_KEY": secrets.token_hex(16)}
    )
    store = start_store(8788, logs)
    worker = start_wrangler(8787, state, variables, logs)
    print("edgepick: worker on http://127.0.0.1:8787 (store on :8788); Ctrl-C stops both")
    try:
        while worker.alive() and store.alive():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
        store.stop()


if __name__ == "__main__":
    main()
