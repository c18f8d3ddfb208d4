"""The Open Bandit Dataset sample: the reader, the plumbing check, the project's policies."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from origin import obd
from tests.conftest import ROOT

OBD_DIR = ROOT / "build" / "obd"


def _archive() -> Path:
    try:
        return obd.find_archive(OBD_DIR)
    except obd.ObdMissing as exc:
        pytest.skip(f"Open Bandit Dataset not fetched ({exc})")


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return obd.run(_archive(), resamples=300)


def test_uniform_on_random_logs_is_the_on_policy_mean_exactly(result: dict[str, Any]) -> None:
    plumbing = result["plumbing"]
    assert result["random"]["rows"] == 10_000 and result["bts"]["rows"] == 10_000
    assert plumbing["max_weight_deviation"] == 0.0  # every weight is exactly 1
    assert plumbing["ips_uniform"] == pytest.approx(plumbing["on_policy_mean"], abs=1e-15)
    assert plumbing["estimates"]["snips"]["value"] == pytest.approx(plumbing["on_policy_mean"])


def test_project_policies_get_estimates_with_wide_intervals(result: dict[str, Any]) -> None:
    policies = result["policies"]
    assert set(policies) == {"uniform (logging)", "thompson", "linear"}
    for name, ests in policies.items():
        for est, e in ests.items():
            assert e["low"] <= e["value"] <= e["high"], (name, est)
            # with ~19 clicks in 5,000 rows, every interval spans a large share of the CTR itself
            assert e["width"] > 0.5 * result["random"]["ctr"], (name, est)
    # the linear policy concentrates on a few items: far fewer effective rows than Thompson's
    assert policies["linear"]["ips"]["ess"] < policies["thompson"]["ips"]["ess"] < 5000


def test_the_reader_reads_a_csv_inside_a_tarball(tmp_path: Path) -> None:
    header = "," + ",".join(
        ["timestamp", "item_id", "position", "click", "propensity_score", *obd.USER_FEATURES]
    )
    lines = [header]
    for i in range(4):
        ts = f"2019-11-24 00:00:0{3 - i}+00:00"  # reverse time order: load() sorts it
        lines.append(f"{i},{ts},{i},1,{i % 2},0.0125,a,b,c,d")
    data = ("\n".join(lines) + "\n").encode()
    archive = tmp_path / "obp-0.5.7.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("obp-0.5.7/obp/dataset/obd/random/all/all.csv")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert obd.find_archive(tmp_path) == archive
    log = obd.load(archive)
    assert list(log.items) == [3, 2, 1, 0]
    assert np.all(log.propensities == 0.0125)
    with pytest.raises(obd.ObdMissing, match="pip download"):
        obd.find_archive(tmp_path / "empty")
