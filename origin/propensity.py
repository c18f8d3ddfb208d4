"""Purchase propensity learned on stitched profiles: a calibrated logistic regression.

Each user's profile as of a cutoff time (``origin.stitch``: visits, page views, funnel stage,
the flags of their browser signals and engagement) becomes a feature vector ``x``
(``profile_features``); the label is whether they purchased within ``horizon`` after the cutoff
(a server-side ``purchase`` or a ``conversion``). The model is

    s(x) = w . (x - mu) / sigma + c        (L2-regularized logistic regression, scikit-learn)
    p(x) = 1 / (1 + exp(-(a s(x) + b)))    (Platt scaling, fitted on users the fit never saw)

(Platt, "Probabilistic outputs for support vector machines", 1999; Niculescu-Mizil & Caruana,
"Predicting good probabilities with supervised learning", ICML 2005). Users are split by a hash
of their id: 60 % fit, 20 % calibrate, 20 % held out for the evaluation (AUC, Brier score,
expected calibration error over 10 equal-width bins). The edge gets a bucket, not the number:
``propensity:high`` (the top 20 % of calibration users' scores), ``propensity:medium`` (the next
30 %), ``propensity:low``, as a profile flag (audiences: ``flags``; linear policies:
``flag:propensity:high``). Needs scikit-learn (``edgepick[eval]``) to train; scoring is numpy.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from core.events import PURCHASE
from core.features import VisitorState, views_per_visit, visit_frequency
from core.model import Signals
from origin.stitch import build_profiles, links
from origin.store import EventSlice, SqliteStore

FEATURES = (
    "log_visits",
    "log_page_views",
    "views_per_visit",
    "visit_frequency",
    "recency",
    "stage_cart",
    "stage_checkout",
    "cart",
    "interest",
    "searcher",
    "engaged",
    "form_submitted",
    "velocity_rising",
    "velocity_falling",
    "buyer",
)
HIGH_SHARE, MEDIUM_SHARE = 0.2, 0.3
WEEK = 7 * 86400


def profile_features(state: VisitorState, now: int) -> list[float]:
    """The model's inputs from one profile as of ``now`` (unix seconds); see ``FEATURES``."""
    flags = state.flags

    def has(prefix: str) -> float:
        return 1.0 if any(f == prefix or f.startswith(prefix + ":") for f in flags) else 0.0

    recency = math.exp(-(now - state.last_seen) / WEEK) if state.last_seen else 0.0
    return [
        math.log1p(state.visits),
        math.log1p(state.page_views),
        views_per_visit(state),
        visit_frequency(state, now),
        recency,
        1.0 if state.stage == "cart" else 0.0,
        1.0 if state.stage in ("checkout", "customer") else 0.0,
        has("cart"),
        has("interest"),
        has("searcher"),
        has("engaged"),
        has("form"),
        1.0 if "velocity:rising" in flags else 0.0,
        1.0 if "velocity:falling" in flags else 0.0,
        has("buyer"),
    ]


def split(user: str) -> str:
    """``fit``, ``calibrate`` or ``test``, by a hash of the user id (60/20/20)."""
    h = int.from_bytes(hashlib.sha256(user.encode()).digest()[:8], "big") % 10
    return "fit" if h < 6 else "calibrate" if h < 8 else "test"


@dataclass(frozen=True)
class PropensityModel:
    """Standardization, the logistic weights, Platt's ``a, b`` and the bucket edges."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float
    a: float
    b: float
    high: float  # calibrated probability at or above which a user is "high"
    medium: float

    def score(self, x: np.ndarray) -> np.ndarray:
        z = (x - np.array(self.mean)) / np.array(self.scale)
        return np.asarray(z @ np.array(self.weights) + self.intercept)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``p(x)`` (module docstring), one per row of ``x``."""
        return np.asarray(1.0 / (1.0 + np.exp(-(self.a * self.score(x) + self.b))))

    def bucket(self, p: float) -> str:
        return "high" if p >= self.high else "medium" if p >= self.medium else "low"

    def flag(self, state: VisitorState, now: int) -> str:
        """The profile flag for one user: ``propensity:<bucket>``."""
        p = float(self.predict(np.array([profile_features(state, now)]))[0])
        return f"propensity:{self.bucket(p)}"

    def to_json(self) -> str:
        return json.dumps({"features": FEATURES, **asdict(self)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> PropensityModel:
        data = json.loads(text)
        if tuple(data.pop("features", ())) != FEATURES:
            raise ValueError("propensity model: trained on other features; retrain it")
        fields: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**fields)


def train(x: np.ndarray, y: np.ndarray, users: list[str]) -> tuple[PropensityModel, dict]:  # type: ignore[type-arg]
    """Fit on the ``fit`` users, calibrate on the ``calibrate`` users, evaluate on ``test``."""
    from sklearn.calibration import calibration_curve
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import brier_score_loss, roc_auc_score

    part = np.array([split(u) for u in users])
    fit, cal, test = part == "fit", part == "calibrate", part == "test"
    mean, scale = x[fit].mean(axis=0), x[fit].std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=1.0, max_iter=1000).fit((x[fit] - mean) / scale, y[fit])
    raw = PropensityModel(
        tuple(mean), tuple(scale), tuple(lr.coef_[0]), float(lr.intercept_[0]), 1.0, 0.0, 1, 1
    )
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(raw.score(x[cal])[:, None], y[cal])
    model = PropensityModel(
        raw.mean, raw.scale, raw.weights, raw.intercept,
        float(platt.coef_[0][0]), float(platt.intercept_[0]), 1.0, 1.0,
    )  # fmt: skip
    p_cal = model.predict(x[cal])
    high = float(np.quantile(p_cal, 1 - HIGH_SHARE))
    medium = float(np.quantile(p_cal, 1 - HIGH_SHARE - MEDIUM_SHARE))
    model = replace(model, high=high, medium=medium)
    p_test, uncalibrated = model.predict(x[test]), 1 / (1 + np.exp(-raw.score(x[test])))
    observed, predicted = calibration_curve(y[test], p_test, n_bins=10, strategy="uniform")
    bins = np.clip((p_test * 10).astype(int), 0, 9)
    weights = np.bincount(bins, minlength=10)[np.unique(bins)] / len(p_test)
    report = {
        "users": {"fit": int(fit.sum()), "calibrate": int(cal.sum()), "test": int(test.sum())},
        "base_rate": round(float(y[test].mean()), 4),
        "auc": round(float(roc_auc_score(y[test], p_test)), 4),
        "brier": round(float(brier_score_loss(y[test], p_test)), 4),
        "brier_uncalibrated": round(float(brier_score_loss(y[test], uncalibrated)), 4),
        "ece": round(float(np.sum(weights * np.abs(observed - predicted))), 4),
        "reliability": [
            [round(float(p), 3), round(float(o), 3)]
            for p, o in zip(predicted, observed, strict=True)
        ],
        "buckets": {
            b: round(float(y[test][np.array([model.bucket(p) == b for p in p_test])].mean()), 4)
            for b in ("high", "medium", "low")
        },
    }
    return model, report


def matrix(profiles: Mapping[str, VisitorState], now: int) -> tuple[list[str], np.ndarray]:
    users = sorted(profiles)
    return users, np.array([profile_features(profiles[u], now) for u in users], dtype=float)


def training_set(
    store: SqliteStore, signals: Signals, cutoff_ms: int, horizon_ms: int
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Users known before ``cutoff_ms``, their profile features as of then, and whether they
    purchased (a server ``purchase`` or a ``conversion``) within ``horizon_ms`` after it."""
    before = EventSlice(
        tuple(store.exposures(0, cutoff_ms)),
        tuple(o for o in store.outcomes() if o["ts"] < cutoff_ms),
        tuple(i for i in store.identifies() if i["ts"] < cutoff_ms),
        tuple(v for v in store.page_views() if v["ts"] < cutoff_ms),
        tuple(s for s in store.signals() if s["ts"] < cutoff_ms),
        tuple(e for e in store.server_events() if e["ts"] < cutoff_ms),
    )
    profiles = build_profiles(before, signals)
    linked = links(store)
    bought: set[str] = set()
    end = cutoff_ms + horizon_ms
    for e in store.server_events(cutoff_ms):
        if e["type"] == PURCHASE and e["ts"] < end:
            bought.add(e["user"] or linked.get(e["visitor"], ""))
    for o in store.outcomes(cutoff_ms):
        if o["type"] == "conversion" and o["ts"] < end:
            bought.add(linked.get(o["visitor"], ""))
    users, x = matrix(profiles, cutoff_ms // 1000)
    return users, x, np.array([1.0 if u in bought else 0.0 for u in users])


def flags_for(
    profiles: Mapping[str, VisitorState], model: PropensityModel, now: int
) -> dict[str, VisitorState]:
    """The profiles with their ``propensity:<bucket>`` flag (any earlier one replaced)."""
    out = {}
    for user, state in profiles.items():
        kept = frozenset(f for f in state.flags if not f.startswith("propensity:"))
        out[user] = state._replace(flags=kept | {model.flag(state, now)})
    return out
