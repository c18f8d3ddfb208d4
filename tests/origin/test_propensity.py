"""Engagement flags (origin.engagement) and the calibrated purchase-propensity model
(origin.propensity) on synthetic shoppers (origin.shoppers) in a real store: it ranks held-out
users (AUC), its probabilities match their purchase rates (calibration), and its bucket reaches
the profile the edge reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from compile.site import compile_site, load_toml
from core.features import VisitorState
from core.profile import decode_profile, profile_key
from origin.engagement import engagement, session_sizes
from origin.propensity import PropensityModel, flags_for, train, training_set
from origin.shoppers import CUTOFF_MS, HORIZON_MS, shop
from origin.store import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600


def test_sessions_trend_and_frequency() -> None:
    times = [
        0,
        60,
        10 * HOUR,
        10 * HOUR + 60,
        10 * HOUR + 120,
        30 * HOUR,
        *range(30 * HOUR, 30 * HOUR + 600, 100),
    ]
    assert [n for _, n in session_sizes(times, 1800)] == [2, 3, 7]
    rising = engagement(times, 1800)
    assert rising.trend > 0.1 and rising.flags() == {"velocity:rising", "frequency:monthly"}
    falling = engagement([0, 60, 120, 10 * HOUR, 30 * HOUR], 1800)  # 3, 1, 1 views
    assert falling.trend < -0.1 and "velocity:falling" in falling.flags()
    daily = engagement([d * 86400 for d in range(28)], 1800)  # a session a day, one view each
    assert daily.flags() == {"velocity:steady", "frequency:daily"}
    assert engagement([], 1800).flags() == frozenset()
    assert engagement([5], 1800).flags() == {"frequency:rare"}  # 1 session in 4 weeks
    assert engagement([5], 1800).frequency == pytest.approx(0.25)


@pytest.fixture(scope="module")
def shoppers(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], np.ndarray, np.ndarray]:
    store = SqliteStore(tmp_path_factory.mktemp("shoppers") / "events.db")
    bought = shop(store, 3000, seed=7)
    signals = compile_site(load_toml(ROOT / "fixtures" / "site.toml")).signals
    users, x, y = training_set(store, signals, CUTOFF_MS, HORIZON_MS)
    store.close()
    assert len(users) == 3000 and int(y.sum()) == bought  # every buyer found by the join
    return users, x, y


def test_the_model_ranks_and_is_calibrated_on_held_out_users(
    shoppers: tuple[list[str], np.ndarray, np.ndarray],
) -> None:
    users, x, y = shoppers
    model, report = train(x, y, users)
    assert report["users"]["test"] > 400
    assert report["auc"] > 0.72  # the latent intent shows through the behaviour
    assert report["ece"] < 0.08
    assert report["brier"] < report["base_rate"] * (1 - report["base_rate"])  # beats the rate
    rates = report["buckets"]
    assert rates["high"] > rates["medium"] > rates["low"]
    again = PropensityModel.from_json(model.to_json())
    assert np.allclose(again.predict(x[:50]), model.predict(x[:50]))
    with pytest.raises(ValueError, match="other features"):
        PropensityModel.from_json(json.dumps({**json.loads(model.to_json()), "features": ["x"]}))


def test_the_bucket_becomes_a_profile_flag(
    shoppers: tuple[list[str], np.ndarray, np.ndarray],
) -> None:
    users, x, y = shoppers
    model, _ = train(x, y, users)
    flags = frozenset({"cart:running", "engaged", "propensity:low"})
    keen = VisitorState("v", 9, 1, 1000, 1000, "cart", (), flags, "u", 60)
    idle = VisitorState("w", visits=1, first_seen=1, last_seen=1, page_views=1, user_id="w")
    flagged = flags_for({"u": keen, "w": idle}, model, 2000)
    assert "propensity:high" in flagged["u"].flags and "propensity:low" not in flagged["u"].flags
    assert "propensity:low" in flagged["w"].flags


def test_the_cli_evaluates_and_writes_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.json"
    assert main(["propensity", "evaluate", "--users", "1500", "--seed", "3", "--out", str(out),
                 "--config", str(ROOT / "fixtures" / "site.toml")]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert report["auc"] > 0.65 and 0 <= report["ece"] < 0.2
    assert PropensityModel.from_json(out.read_text()).high >= 0


def test_profiles_are_published_with_their_bucket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SqliteStore(tmp_path / "events.db")
    shop(store, 600, seed=5)
    store.close()
    model = tmp_path / "model.json"
    site = str(ROOT / "fixtures" / "site.toml")
    assert main(["propensity", "train", "--store", str(tmp_path / "events.db"), "--config", site,
                 "--cutoff-ms", str(CUTOFF_MS), "-o", str(model)]) == 0  # fmt: skip
    capsys.readouterr()
    kv = tmp_path / "kv"
    assert main(["propensity", "profiles", "--store", str(tmp_path / "events.db"), "--config",
                 site, "--model", str(model), "--target", f"dir:{kv}"]) == 0  # fmt: skip
    counts = json.loads(capsys.readouterr().out)
    assert counts["profiles"] == 600
    assert counts["propensity:high"] + counts["propensity:medium"] + counts["propensity:low"] == 600
    state = decode_profile((kv / profile_key("su-000001")).read_bytes())
    assert state is not None and any(f.startswith("propensity:") for f in state.flags)
