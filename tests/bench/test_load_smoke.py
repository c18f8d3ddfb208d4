"""A tiny bounded load run of the real collector with wrk: zero errors, zero lost events."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import load

pytestmark = pytest.mark.skipif(load.wrk_path() is None, reason="wrk not installed (apt wrk)")


def test_collector_short_load_loses_nothing(tmp_path: Path) -> None:
    run = load.collector_level(rate=40, duration=2, threads=4, per_batch=5, logs=tmp_path / "logs")
    events = run["events"]
    assert run["errors"] == {
        "connect": 0,
        "read": 0,
        "write": 0,
        "status": 0,
        "timeout": 0,
        "non_2xx": 0,
    }
    assert run["responses_2xx"] >= 60  # ~80 paced over 2 s
    assert events["acknowledged"] == 5 * run["responses_2xx"]
    assert events["lost"] == 0 and events["stored_never_sent"] == 0
    assert events["stored"] >= events["acknowledged"]
    assert events["acknowledged"] <= run["collector_counters"]["accepted"] <= events["stored"]
