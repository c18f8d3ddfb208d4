"""Nothing outlives its owner: a SIGTERM, or Ctrl-C pressed twice, still stops every child
process group an owner started (the dev stack and the demo use the same two helpers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWNER = textwrap.dedent(
    r"""
    import sys, time
    from pathlib import Path
    from cli.devstack import Process, sigterm_interrupts, stop_all

    logs = Path(sys.argv[1])
    # children that take a second to stop, so a second signal lands during the cleanup
    slow_exit = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(1.0), sys.exit(0)))\n"
        "time.sleep(120)"
    )
    children = [
        Process(f"sleeper{i}", [sys.executable, "-c", slow_exit], logs / f"sleeper{i}.log")
        for i in range(3)
    ]
    print(" ".join(str(c.popen.pid) for c in children), flush=True)
    try:
        with sigterm_interrupts():
            while True:
                time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all(children)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


@pytest.mark.parametrize(
    "signals", [[signal.SIGTERM], [signal.SIGINT, signal.SIGINT]], ids=["sigterm", "ctrl-c-twice"]
)
def test_children_are_stopped_whatever_stops_the_owner(
    tmp_path: Path, signals: list[signal.Signals]
) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    pids = [int(p) for p in owner.stdout.readline().split()]
    assert len(pids) == 3 and all(_alive(p) for p in pids)
    time.sleep(0.5)  # the children have installed their handlers
    for sig in signals:
        owner.send_signal(sig)
        time.sleep(0.4)  # the second one arrives while the owner waits for its children
    owner.wait(timeout=20)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in pids if _alive(p)] == []
