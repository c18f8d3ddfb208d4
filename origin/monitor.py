"""Monitors: signal quality (event volume) and edge decision latency.

**Volume.** For each event type, the count in the last complete window ``c_0`` is compared
with its expected level, the trailing mean of the ``history`` windows before it,
``E = (1/H) sum_{h=1..H} c_h``. An alert fires when ``E >= min_expected`` and
``c_0 < drop * E`` (tracking broke, a beacon was removed) or ``c_0 > spike * E`` (a loop,
bots, a double-firing tag).

**Latency.** Percentiles p50/p95/p99 of the exposures' ``decision_us`` in the last window
(linear interpolation between order statistics, numpy's default); an alert fires when
``p99 >= warn * budget_us``.

Alerts are logged (logger ``edgepick.monitor``) and, when a webhook URL is configured, POSTed
to it as JSON ``{"alerts": [...]}``; a failing webhook is logged, never raised.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import numpy as np

from core.events import EVENT_TYPES
from origin.store import EventStore

log = logging.getLogger("edgepick.monitor")


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    window_ms: int = 3600 * 1000
    history: int = 24
    drop: float = 0.5
    spike: float = 3.0
    min_expected: float = 20.0
    budget_us: int = 5000
    warn: float = 0.8


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str  # volume or latency
    subject: str  # the event type, or "decision_us"
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def volume_alerts(store: EventStore, now_ms: int, config: MonitorConfig) -> list[Alert]:
    w = config.window_ms
    current = (now_ms // w) * w - w  # start of the last complete window
    since = current - config.history * w
    counts = store.volume(since, w)
    alerts: list[Alert] = []
    for kind in EVENT_TYPES:
        observed = counts.get((kind, current), 0)
        past = [counts.get((kind, current - h * w), 0) for h in range(1, config.history + 1)]
        expected = sum(past) / len(past) if past else 0.0
        if expected < config.min_expected:
            continue
        details = {"observed": observed, "expected": round(expected, 2), "window_start": current}
        if observed < config.drop * expected:
            message = (
                f"{kind} volume dropped: {observed} in the last window, expected "
                f"{expected:.1f} (below {config.drop:.0%})"
            )
            alerts.append(Alert("volume", kind, message, details))
        elif observed > config.spike * expected:
            message = (
                f"{kind} volume spiked: {observed} in the last window, expected "
                f"{expected:.1f} (above {config.spike:.1f}x)"
            )
            alerts.append(Alert("volume", kind, message, details))
    return alerts


def latency_percentiles(store: EventStore, since_ms: int, until_ms: int) -> dict[str, float]:
    exposures = store.exposures(since_ms, until_ms)
    values = [e["decision_us"] for e in exposures if e["decision_us"] is not None]  # measured
    if not values:
        return {}
    p50, p95, p99 = np.percentile(np.asarray(values, dtype=float), [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "n": float(len(values))}


def latency_alerts(store: EventStore, now_ms: int, config: MonitorConfig) -> list[Alert]:
    stats = latency_percentiles(store, now_ms - config.window_ms, now_ms + 1)
    if not stats or stats["p99"] < config.warn * config.budget_us:
        return []
    message = (
        f"edge decision p99 {stats['p99']:.0f} us is at {stats['p99'] / config.budget_us:.0%} "
        f"of the {config.budget_us} us budget (p50 {stats['p50']:.0f}, p95 {stats['p95']:.0f})"
    )
    return [Alert("latency", "decision_us", message, stats)]


def check(store: EventStore, now_ms: int, config: MonitorConfig = MonitorConfig()) -> list[Alert]:
    return volume_alerts(store, now_ms, config) + latency_alerts(store, now_ms, config)


def report(alerts: list[Alert], webhook: str | None = None, timeout: float = 5.0) -> None:
    """Log every alert; POST them to ``webhook`` when given."""
    for alert in alerts:
        log.warning("ALERT %s %s: %s", alert.kind, alert.subject, alert.message)
    if not alerts or not webhook:
        return
    try:
        response = httpx.post(
            webhook, json={"alerts": [asdict(a) for a in alerts]}, timeout=timeout
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        log.error("alert webhook %s failed: %s", webhook, exc)
