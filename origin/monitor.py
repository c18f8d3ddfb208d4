"""Monitors: signal quality (event volume) and edge decision latency.

**Volume.** For each event type, the count in the last complete window ``c_0`` is compared
with its expected level, the trailing mean of the ``history`` windows before it,
``E = (1/H) sum_{h=1..H} c_h``. An alert fires when ``E >= min_expected`` and
``c_0 < drop * E`` (tracking broke, a beacon was removed) or ``c_0 > spike * E`` (a loop,
bots, a double-firing tag).

**Latency.** Percentiles p50/p95/p99 of the exposures' ``decision_us`` in the last window
(linear interpolation between order statistics, numpy's default); an alert fires when
``p99 >= warn * budget_us``.

**Real-user vitals.** Pages report LCP, INP, CLS and TTFB with the decisions they showed
(``core.events`` ``vitals``). Over the last ``vitals_window_ms``, the 75th percentile of each
metric is kept per (slot, arm, holdout) (``vitals_p75``: a page counts once for each decision
it showed); an alert fires when one reaches ``vitals_warn`` of the "good" threshold (``GOOD``:
LCP 2.5 s, INP 200 ms, CLS 0.1), and when personalized pages (any decision not from the
holdout) are slower than holdout pages (every decision from the holdout): p75 above
``vitals_slower`` times the holdout's and by at least ``MIN_GAP``. Groups with fewer than
``vitals_min_pages`` pages are not judged.

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
    vitals_window_ms: int = 24 * 3600 * 1000
    vitals_warn: float = 0.8
    vitals_slower: float = 1.1
    vitals_min_pages: int = 20


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str  # volume, latency or vitals
    subject: str  # the event type, "decision_us", or "<metric> <slot>/<variant>" (vitals)
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


# ---- real-user vitals: p75 per slot, arm and holdout; thresholds; personalized vs holdout ----

GOOD = {"lcp": 2500.0, "inp": 200.0, "cls": 0.1}  # web.dev's "good" upper bounds (p75)
COMPARED = ("lcp", "inp", "cls", "ttfb")
MIN_GAP = {"lcp": 100.0, "inp": 20.0, "cls": 0.01, "ttfb": 50.0}  # smaller gaps are noise
UNITS = {"lcp": "ms", "inp": "ms", "cls": "", "ttfb": "ms"}
HOLDOUT = "holdout"


@dataclass(frozen=True, slots=True)
class VitalsP75:
    slot: str  # "" for the page-level comparison groups
    variant: str  # the arm, or "personalized" / "holdout" pages
    holdout: bool
    metric: str
    p75: float
    pages: int


def _p75(values: list[float]) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), 75))


def vitals_p75(store: EventStore, since_ms: int, until_ms: int) -> list[VitalsP75]:
    """p75 of each metric per (slot, arm, holdout), then per kind of page (``slot`` ""):
    ``personalized`` pages (a decision not from the holdout) and ``holdout`` pages."""
    arms: dict[tuple[str, str, bool, str], list[float]] = {}
    pages: dict[str, tuple[bool, dict[str, float]]] = {}
    for row in store.vitals_by_decision(since_ms, until_ms):
        held = row["reason"] == HOLDOUT
        metrics = {m: float(row[m]) for m in COMPARED if row.get(m) is not None}
        for metric, value in metrics.items():
            arms.setdefault((row["slot"], row["variant"], held, metric), []).append(value)
        seen = pages.get(row["page"])
        pages[row["page"]] = (held and (seen is None or seen[0]), metrics)
    for held, metrics in pages.values():
        for metric, value in metrics.items():
            group = HOLDOUT if held else "personalized"
            arms.setdefault(("", group, held, metric), []).append(value)
    return [
        VitalsP75(slot, variant, held, metric, _p75(values), len(values))
        for (slot, variant, held, metric), values in sorted(arms.items())
    ]


def _shown(metric: str, value: float) -> str:
    return f"{value:.3f}" if metric == "cls" else f"{value:.0f} {UNITS[metric]}"


def vitals_alerts(store: EventStore, now_ms: int, config: MonitorConfig) -> list[Alert]:
    rows = vitals_p75(store, now_ms - config.vitals_window_ms, now_ms + 1)
    alerts: list[Alert] = []
    enough = [r for r in rows if r.pages >= config.vitals_min_pages]
    for r in enough:
        good = GOOD.get(r.metric)
        if good is None or r.p75 < config.vitals_warn * good:
            continue
        who = f"{r.slot}/{r.variant}" if r.slot else f"{r.variant} pages"
        message = (
            f"{r.metric.upper()} p75 {_shown(r.metric, r.p75)} for {who}"
            f"{' (holdout)' if r.holdout and r.slot else ''} is at {r.p75 / good:.0%} of the "
            f"'good' threshold {_shown(r.metric, good)} ({r.pages} pages)"
        )
        details = {"p75": r.p75, "pages": r.pages, "threshold": good, "holdout": r.holdout}
        alerts.append(Alert("vitals", f"{r.metric} {who}", message, details))
    groups = {(r.variant, r.metric): r for r in enough if not r.slot}
    for metric in COMPARED:
        mine, held = groups.get(("personalized", metric)), groups.get((HOLDOUT, metric))
        if mine is None or held is None:
            continue
        if mine.p75 > config.vitals_slower * held.p75 and mine.p75 - held.p75 >= MIN_GAP[metric]:
            message = (
                f"personalized pages are slower than holdout pages: {metric.upper()} p75 "
                f"{_shown(metric, mine.p75)} against {_shown(metric, held.p75)} "
                f"({mine.pages} and {held.pages} pages)"
            )
            gap: dict[str, Any] = {
                "personalized": mine.p75,
                "holdout": held.p75,
                "pages": [mine.pages, held.pages],
            }
            alerts.append(Alert("vitals", f"{metric} personalized vs holdout", message, gap))
    return alerts


def check(store: EventStore, now_ms: int, config: MonitorConfig = MonitorConfig()) -> list[Alert]:
    return (
        volume_alerts(store, now_ms, config)
        + latency_alerts(store, now_ms, config)
        + vitals_alerts(store, now_ms, config)
    )


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
