"""The Open Bandit Dataset sample: the reader, the plumbing check, the project's policies."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from origin import obd
from origin.ope import Logged, ips
from tests.conftest import ROOT

OBD_DIR = ROOT / "build" / "obd"


def _archive() -> Path:
    """The archive ``make setup`` fetches: its absence is a failure (with the fetch command)."""
    try:
        return obd.find_archive(OBD_DIR)
    except obd.ObdMissing as exc:
        pytest.fail(f"Open Bandit Dataset not fetched: run `make setup` ({exc})")


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
    # neither target is the logging policy: fewer effective rows than the 5,000 logged (how
    # far the linear one concentrates depends on how hard the learner shrinks its arms)
    assert policies["thompson"]["ips"]["ess"] < 5000
    assert policies["linear"]["ips"]["ess"] < 5000
    assert policies["uniform (logging)"]["ips"]["ess"] == pytest.approx(5000)


def test_bernoulli_ts_estimated_off_policy_is_checked_against_its_on_policy_ctr(
    result: dict[str, Any],
) -> None:
    checks = {c["campaign"]: c for c in result["bts_check"]}
    assert set(checks) == {"all", "men", "women"}
    assert checks["all"]["items"] == 80 and checks["all"]["bts"]["clicks"] == 42
    for campaign, check in checks.items():
        truth = check["on_policy"]["value"]
        assert truth == check["bts"]["clicks"] / check["bts"]["rows"]
        # the BTS policy changed during the week: the start-of-week prior is far from what it did
        assert min(check["prior_vs_logged_tv"]) > 0.2 and check["max_distinct_propensities"] > 50
        for target in ("prior", "logged"):
            for est, e in check["targets"][target].items():
                assert e["low"] <= e["value"] <= e["high"], (campaign, target, est)
                assert e["covers_on_policy"] == (e["low"] <= truth <= e["high"])
        # measured (seed 0): the week-average policy's intervals cover the on-policy CTR for
        # every estimator and campaign; the prior's IPS and DR intervals cover it too
        assert all(e["covers_on_policy"] for e in check["targets"]["logged"].values()), campaign
        prior = check["targets"]["prior"]
        assert prior["ips"]["covers_on_policy"] and prior["dr"]["covers_on_policy"], campaign


def test_the_check_can_fail_with_wrong_propensities() -> None:
    """A negative control: the random logs' propensity claimed as 1/20 instead of 1/80 makes
    every campaign's IPS interval miss the BTS on-policy CTR (the estimate is a quarter)."""
    archive = _archive()
    for campaign in obd.CAMPAIGNS:
        random_log, bts_log = (
            obd.load(archive, "random", campaign),
            obd.load(archive, "bts", campaign),
        )
        dist = obd.bts_targets(archive, campaign, bts_log, n_sim=2000)["logged"]
        target = dist[:, random_log.positions - 1].T
        truth = float(bts_log.clicks.mean())
        wrong = Logged(
            random_log.items,
            random_log.clicks,
            np.full(random_log.n, 1 / 20),
            np.zeros((random_log.n, 0)),
            dist.shape[0],
        )
        right = Logged(
            random_log.items,
            random_log.clicks,
            random_log.propensities,
            np.zeros((random_log.n, 0)),
            dist.shape[0],
        )
        assert not ips(wrong, target, resamples=300).covers(truth), campaign
        assert ips(right, target, resamples=300).covers(truth), campaign


def test_bts_rank_probabilities() -> None:
    # identical priors: every item equally likely in every position
    same = obd.bts_action_dist(np.full(3, 5.0), np.full(3, 50.0), n_sim=30_000)
    assert np.allclose(same.sum(axis=0), 1.0) and np.allclose(same, 1 / 3, atol=0.02)
    # one item far better: always first; the two others split positions 2 and 3
    far = obd.bts_action_dist(
        np.asarray([500.0, 5.0, 5.0, 1.0]), np.asarray([500.0, 500.0, 500.0, 1e6]), n_sim=20_000
    )
    assert far[0, 0] == 1.0 and far[3].sum() == 0.0
    assert far[1, 1] == pytest.approx(0.5, abs=0.03) and far[1, 1] + far[2, 1] == 1.0


def test_the_production_prior_is_read_from_the_archive() -> None:
    archive = _archive()
    alpha, beta = obd.bts_prior(archive, "all")
    assert len(alpha) == len(beta) == 80 and alpha[0] == 47.0 and beta[0] == 12198.0
    assert [len(obd.bts_prior(archive, c)[0]) for c in ("men", "women")] == [34, 46]


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
