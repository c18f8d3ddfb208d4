"""Monitors: signal quality (event volume), edge decision latency, real-user vitals.

**Volume.** Traffic has a daily cycle (nights are a fraction of the afternoon), so a window is
compared with the *same window on earlier days*, not with the hours just before it. For an
event type and the window starting at ``t``, the expected count is the median

    E(t) = median{ c(t - d * 24 h) : d = 1..days, t - d * 24 h after traffic began, c > 0 }

(a seasonal-naive baseline, Hyndman & Athanasopoulos, "Forecasting: Principles and Practice",
3rd ed., 2021, section 5.2; the median so that one bad day does not move it). A window with no
event of that type at all is left out of the baseline: an outage is not a season, and an outage
that already ran a day must not become tomorrow's expectation (the old trailing-mean monitor
went silent after ~9 hours of an ongoing outage that way). No earlier day: no judgement (the
monitor learns the first day).

*Drop (sustained-outage rule).* Going back from the last complete window, the run is the
windows in a row with ``c(t) < drop * E(t)`` (at most ``sustain`` of them). With
``O = sum c`` and ``E = sum E(t)`` over the run, an alert fires when ``E >= min_expected`` and
the Poisson lower tail ``P(X <= O | X ~ Poisson(E)) < alpha``. One window of a busy hour is
enough; at night, where an hour expects a handful of clicks, the run accumulates until the
missing events are significant, so an outage is caught at any hour and stays caught for as
long as it lasts, and a quiet night is not an outage.

*Spike.* The last window alone: ``c > spike * E``, ``E >= min_expected`` and the upper tail
``P(X >= c | Poisson(E)) < alpha`` (a loop, bots, a double-firing tag).

The Poisson tails are exact sums of ``exp(k log mu - mu - lgamma(k + 1))``.

**Open alerts** (``AlertBook``): the monitor runs every sync round, more often than conditions
change. An alert is keyed by (kind, subject, direction); it is reported when it opens, kept
open (not reported again) while checks keep raising it, and closed once a check at least
``resolve_ms`` after it was last raised no longer does. The book can be saved as JSON (the
sync job keeps one per registry) so rounds in different processes share it.

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

import datetime as dt
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from core.events import EVENT_TYPES
from origin.store import EventStore

log = logging.getLogger("edgepick.monitor")
HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    window_ms: int = HOUR_MS
    days: int = 7  # the seasonal baseline: the same window on up to this many earlier days
    drop: float = 0.5
    spike: float = 3.0
    min_expected: float = 20.0
    alpha: float = 1e-3  # Poisson tail probability below which a deviation is not noise
    sustain: int = 48  # the longest run of low windows summed by the outage rule
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


def _log_poisson(k: int, mu: float) -> float:
    return k * math.log(mu) - mu - math.lgamma(k + 1)


def poisson_cdf(k: int, mu: float) -> float:
    """``P(X <= k)`` for ``X ~ Poisson(mu)`` (an exact sum of the terms)."""
    if k < 0:
        return 0.0
    if mu <= 0:
        return 1.0
    return min(1.0, math.fsum(math.exp(_log_poisson(i, mu)) for i in range(k + 1)))


def poisson_sf(k: int, mu: float) -> float:
    """``P(X >= k)`` for ``X ~ Poisson(mu)``, summed upward from ``k`` (no cancellation)."""
    if k <= 0:
        return 1.0
    if mu <= 0:
        return 0.0
    terms, i = [], k
    while True:
        term = math.exp(_log_poisson(i, mu))
        terms.append(term)
        i += 1
        if i > mu and term < 1e-17 * math.fsum(terms):
            return min(1.0, math.fsum(terms))


def seasonal_expected(
    counts: dict[tuple[str, int], int], kind: str, start: int, began: int, days: int
) -> float | None:
    """The median count of ``kind`` in the window at ``start`` on up to ``days`` earlier days
    (after ``began``, windows with no such event left out); ``None`` without any."""
    past = [
        counts.get((kind, start - d * DAY_MS), 0)
        for d in range(1, days + 1)
        if start - d * DAY_MS >= began
    ]
    seen = [c for c in past if c > 0]
    return float(np.median(seen)) if seen else None


def volume_alerts(store: EventStore, now_ms: int, config: MonitorConfig) -> list[Alert]:
    """Seasonal volume alerts (module docstring): sustained drops and spikes per event type."""
    w = config.window_ms
    current = (now_ms // w) * w - w  # start of the last complete window
    since = current - config.sustain * w - config.days * DAY_MS
    counts = store.volume(since, w)
    if not counts:
        return []
    began = min(start for _, start in counts)  # traffic began (or the look-back did)
    alerts: list[Alert] = []
    for kind in EVENT_TYPES:
        expected_now = seasonal_expected(counts, kind, current, began, config.days)
        if expected_now is None:
            continue
        observed = counts.get((kind, current), 0)
        run_o, run_e, onset, run = 0, 0.0, current, 0
        for j in range(config.sustain):
            t = current - j * w
            e = expected_now if j == 0 else seasonal_expected(counts, kind, t, began, config.days)
            c = counts.get((kind, t), 0)
            if e is None or c >= config.drop * e:
                break
            run_o, run_e, onset, run = run_o + c, run_e + e, t, run + 1
        if run and run_e >= config.min_expected:
            p = poisson_cdf(run_o, run_e)
            if p < config.alpha:
                hours = run * w / HOUR_MS
                ongoing = f"for {hours:g} h" + (" or more" if run == config.sustain else "")
                message = (
                    f"{kind} volume dropped {ongoing}: {run_o} events since "
                    f"{_utc(onset)} UTC, expected {run_e:.0f} from the same hours on earlier "
                    f"days (below {config.drop:.0%}; P = {p:.1e})"
                )
                details = {
                    "direction": "drop",
                    "observed": run_o,
                    "expected": round(run_e, 2),
                    "since": onset,
                    "windows": run,
                    "window_start": current,
                    "p": p,
                }
                alerts.append(Alert("volume", kind, message, details))
                continue
        if expected_now >= config.min_expected and observed > config.spike * expected_now:
            p = poisson_sf(observed, expected_now)
            if p < config.alpha:
                message = (
                    f"{kind} volume spiked: {observed} in the window from {_utc(current)} UTC, "
                    f"expected {expected_now:.0f} from the same hour on earlier days (above "
                    f"{config.spike:g}x; P = {p:.1e})"
                )
                details = {
                    "direction": "spike",
                    "observed": observed,
                    "expected": round(expected_now, 2),
                    "since": current,
                    "windows": 1,
                    "window_start": current,
                    "p": p,
                }
                alerts.append(Alert("volume", kind, message, details))
    return alerts


def _utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%a %H:%M")


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


# ---- open alerts: report an alert when it opens, not every round while it stays open ----


@dataclass(slots=True)
class Episode:
    """One alert from when it opened until it closed (``closed_ms`` 0 while open)."""

    key: str
    kind: str
    subject: str
    message: str  # as first raised
    opened_ms: int
    last_ms: int  # the last check that raised it
    checks: int = 1  # how many checks raised it
    closed_ms: int = 0
    details: dict[str, Any] = field(default_factory=dict)  # as last raised

    @property
    def open(self) -> bool:
        return self.closed_ms == 0


def alert_key(alert: Alert) -> str:
    return f"{alert.kind}|{alert.subject}|{alert.details.get('direction', '')}"


class AlertBook:
    """Open and closed alert episodes (module docstring, "Open alerts"), optionally on disk."""

    def __init__(
        self, path: Path | None = None, resolve_ms: int = 2 * HOUR_MS, keep: int = 500
    ) -> None:
        self.path, self.resolve_ms, self.keep = path, resolve_ms, keep
        self.episodes: dict[str, Episode] = {}  # open, by key
        self.closed: list[Episode] = []
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            self.episodes = {e["key"]: Episode(**e) for e in data.get("open", [])}
            self.closed = [Episode(**e) for e in data.get("closed", [])]

    def update(self, alerts: Sequence[Alert], now_ms: int) -> tuple[list[Alert], list[Episode]]:
        """Record one check's alerts: returns those that opened now, and the episodes closed."""
        opened: list[Alert] = []
        raised: set[str] = set()
        for alert in alerts:
            key = alert_key(alert)
            raised.add(key)
            episode = self.episodes.get(key)
            if episode is None:
                self.episodes[key] = Episode(
                    key,
                    alert.kind,
                    alert.subject,
                    alert.message,
                    now_ms,
                    now_ms,
                    1,
                    0,
                    dict(alert.details),
                )
                opened.append(alert)
            else:
                episode.last_ms, episode.checks = now_ms, episode.checks + 1
                episode.details = dict(alert.details)
        closed: list[Episode] = []
        for key, episode in list(self.episodes.items()):
            if key not in raised and now_ms - episode.last_ms >= self.resolve_ms:
                episode.closed_ms = now_ms
                closed.append(self.episodes.pop(key))
                log.info(
                    "RESOLVED %s %s (open since %s)",
                    episode.kind,
                    episode.subject,
                    _utc(episode.opened_ms),
                )
        self.closed = (self.closed + closed)[-self.keep :]
        if self.path is not None:
            self.save()
        return opened, closed

    def all(self) -> list[Episode]:
        """Every episode, closed and open, by opening time."""
        return sorted([*self.closed, *self.episodes.values()], key=lambda e: (e.opened_ms, e.key))

    def save(self) -> None:
        assert self.path is not None
        data = {
            "open": [asdict(e) for e in self.episodes.values()],
            "closed": [asdict(e) for e in self.closed],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, sort_keys=True))
        tmp.replace(self.path)


def check(
    store: EventStore,
    now_ms: int,
    config: MonitorConfig = MonitorConfig(),
    book: AlertBook | None = None,
) -> list[Alert]:
    """Every monitor's alerts at ``now_ms``; with a ``book``, only those that opened now."""
    alerts = (
        volume_alerts(store, now_ms, config)
        + latency_alerts(store, now_ms, config)
        + vitals_alerts(store, now_ms, config)
    )
    if book is None:
        return alerts
    return book.update(alerts, now_ms)[0]


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
