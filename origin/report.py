"""``edgepick report``: one static HTML page with the numbers people look at, as plots.

Sections (every plot is a PNG embedded as a ``data:`` URI, so the file stands alone):

1. **Variant performance**: per slot, each variant's click-through rate with a 95% Wilson score
   interval (Wilson 1927), over every exposure of the variant (any reason):

       (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n),   z = 1.96

2. **Allocation over time**: the Thompson weights (and linear slots' cold-start allocation) of
   every snapshot in the registry, by creation time (one point per publish).
3. **Posterior curves**: the Beta posteriors ``Beta(1 + s, 1 + n - s)`` the learner samples for
   each variant of the Thompson slots (policy draws only, as the learner uses).
4. **Edge decision latency**: histogram of the exposures' ``decision_us``, with p50/p99 and
   the budget.
5. **Event volume**: events per hour and type; the monitor (``origin.monitor.check``) is run at
   the end of every hour and its alerts are marked where they fire.
6. **Off-policy evaluation**: ``origin.evaluate`` per slot (IPS, SNIPS, DR with bootstrap
   intervals) as a table and an interval plot.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.model import LinearPolicy, ThompsonPolicy
from core.snapshot import decode_snapshot
from origin.evaluate import SlotResult, evaluate_store
from origin.monitor import Alert, MonitorConfig, check, latency_percentiles
from origin.plots import COLORS, data_uri, figure, png
from origin.registry import Registry
from origin.store import EventStore
from origin.training import TrainingRow, training_rows

HOUR_MS = 3_600_000


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a proportion (see the module docstring)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / denom), min(1.0, (centre + spread) / denom)


def beta_pdf(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """The Beta(a, b) density (log-gamma form, stable for large counts)."""
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    with np.errstate(divide="ignore"):
        logs = log_norm + (a - 1) * np.log(x) + (b - 1) * np.log1p(-x)
    result: np.ndarray = np.exp(logs)
    return result


@dataclass
class Report:
    title: str
    sections: list[str] = field(default_factory=list)  # rendered HTML, one per section
    headings: list[str] = field(default_factory=list)
    figures: int = 0

    def section(self, heading: str, body: str) -> None:
        self.headings.append(heading)
        anchor = heading.lower().replace(" ", "-")
        self.sections.append(
            f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>{body}</section>'
        )

    def image(self, data: bytes, alt: str) -> str:
        self.figures += 1
        return f'<img class="plot" alt="{html.escape(alt)}" src="{data_uri(data)}">'

    def render(self, subtitle: str) -> str:
        nav = " · ".join(
            f'<a href="#{h.lower().replace(" ", "-")}">{html.escape(h)}</a>' for h in self.headings
        )
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
h1 {{ margin-bottom: 0.2rem; }} h2 {{ border-bottom: 1px solid #ddd; margin-top: 2.5rem; }}
.sub {{ color: #666; }} img.plot {{ max-width: 100%; display: block; margin: 0.8rem 0; }}
table {{ border-collapse: collapse; font-size: 0.85rem; margin: 0.6rem 0; }}
th, td {{ border: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }} .note {{ color: #555; font-size: 0.9rem; }}
.alert {{ color: #b00020; }}
</style></head><body>
<h1>{html.escape(self.title)}</h1><p class="sub">{subtitle}</p><nav>{nav}</nav>
{"".join(self.sections)}
</body></html>
"""


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _when(ms: float) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")


# ------------------------------------------------------------------ sections


def performance(report: Report, rows: Sequence[TrainingRow]) -> None:
    by_slot: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        stats = by_slot.setdefault(r.slot, {}).setdefault(r.variant, [0.0, 0.0])
        stats[0] += 1
        stats[1] += 1.0 if r.clicks > 0 else 0.0
    if not by_slot:
        report.section("Variant performance", "<p>No exposures in the store.</p>")
        return
    parts = [
        '<p class="note">Click-through rate per variant over all its exposures, with 95% Wilson '
        "score intervals.</p>"
    ]
    table_rows: list[list[Any]] = []
    for slot, variants in sorted(by_slot.items()):
        names = sorted(variants)
        n = np.asarray([variants[v][0] for v in names])
        s = np.asarray([variants[v][1] for v in names])
        ctr = s / n
        bounds = np.asarray([wilson(si, int(ni)) for si, ni in zip(s, n, strict=True)])
        fig, ax = figure(7.0, 0.45 * len(names) + 1.2)
        y = np.arange(len(names))
        ax.errorbar(
            ctr * 100,
            y,
            xerr=[(ctr - bounds[:, 0]) * 100, (bounds[:, 1] - ctr) * 100],
            fmt="o",
            capsize=4,
            color=COLORS[0],
        )
        ax.set_yticks(y, [f"{v} (n={int(k)})" for v, k in zip(names, n, strict=True)])
        ax.set_xlabel("click-through rate (%)")
        ax.set_title(f"slot {slot}")
        parts.append(report.image(png(fig), f"variant performance: {slot}"))
        for v, ni, si, c, (lo, hi) in zip(names, n, s, ctr, bounds, strict=True):
            table_rows.append([slot, v, int(ni), int(si), f"{c:.2%}", f"[{lo:.2%}, {hi:.2%}]"])
    parts.append(
        _table(["slot", "variant", "exposures", "clicks", "CTR", "95% Wilson"], table_rows)
    )
    report.section("Variant performance", "".join(parts))


def allocation(report: Report, registry: Registry) -> None:
    headers = sorted(registry.headers(), key=lambda h: (h.created, h.id))
    series: dict[str, dict[str, list[float]]] = {}
    times: dict[str, list[float]] = {}
    labels: dict[str, str] = {}
    for h in headers:
        site = decode_snapshot(registry.get(h.id)).site
        for slot in site.slots:
            policy = slot.policy
            if isinstance(policy, ThompsonPolicy):
                weights, labels[slot.name] = policy.weights, "Thompson P(best) weights"
            elif isinstance(policy, LinearPolicy) and policy.cold_start:
                weights, labels[slot.name] = policy.cold_start, "cold-start allocation"
            else:
                continue
            total = sum(weights) or 1.0
            times.setdefault(slot.name, []).append(h.created * 1000.0)
            per = series.setdefault(slot.name, {})
            for variant, w in zip(slot.variants, weights, strict=True):
                per.setdefault(variant.id, [0.0] * (len(times[slot.name]) - 1)).append(w / total)
            for values in per.values():
                if len(values) < len(times[slot.name]):
                    values.append(0.0)
    if not series:
        report.section("Allocation over time", "<p>No learned allocations in the registry.</p>")
        return
    parts = [
        f'<p class="note">{len(headers)} snapshots in the registry; each point is one snapshot '
        "(normalized weights, before the edge's exploration floor).</p>"
    ]
    for name, per in sorted(series.items()):
        hours = (np.asarray(times[name]) - times[name][0]) / HOUR_MS
        fig, ax = figure(7.0, 3.4)
        ax.stackplot(hours, *[per[v] for v in per], labels=list(per), colors=COLORS[: len(per)] * 2)
        ax.set_xlabel("hours since the first snapshot")
        ax.set_ylabel("share")
        ax.set_ylim(0, 1)
        ax.set_title(f"slot {name}: {labels[name]}")
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
        parts.append(report.image(png(fig), f"allocation over time: {name}"))
    report.section("Allocation over time", "".join(parts))


def posteriors(report: Report, registry: Registry, rows: Sequence[TrainingRow]) -> None:
    current = registry.current_blob()
    slots = (
        [s for s in decode_snapshot(current).site.slots if isinstance(s.policy, ThompsonPolicy)]
        if current
        else []
    )
    parts = [
        '<p class="note">Beta(1 + clicks, 1 + exposures - clicks) per variant, over policy draws '
        "(the posteriors the learner samples P(best) from).</p>"
    ]
    drawn = 0
    for slot in slots:
        counts: dict[str, list[float]] = {v.id: [0.0, 0.0] for v in slot.variants}
        for r in rows:
            if r.slot == slot.name and r.learnable and r.variant in counts:
                counts[r.variant][0] += 1
                counts[r.variant][1] += min(max(r.reward, 0.0), 1.0)
        upper = max(((s + 1) / (n + 2) for n, s in counts.values() if n > 0), default=0.1)
        x = np.linspace(0.0005, min(0.999, upper * 2.5 + 0.01), 600)
        fig, ax = figure(7.0, 3.4)
        for n_color, (vid, (n, s)) in enumerate(counts.items()):
            if n == 0:
                continue
            ax.plot(
                x,
                beta_pdf(x, 1 + s, 1 + n - s),
                label=f"{vid} ({int(s)}/{int(n)})",
                color=COLORS[n_color % len(COLORS)],
            )
        ax.set_xlabel("click-through rate")
        ax.set_ylabel("density")
        ax.set_title(f"slot {slot.name}: posteriors")
        ax.legend(fontsize=8)
        parts.append(report.image(png(fig), f"posterior curves: {slot.name}"))
        drawn += 1
    if not drawn:
        parts.append("<p>No Thompson slot in the current snapshot.</p>")
    report.section("Posterior curves", "".join(parts))


def latency(report: Report, store: EventStore, budget_us: int) -> None:
    measured = [e["decision_us"] for e in store.exposures() if e["decision_us"] is not None]
    values = np.asarray(measured, dtype=float)
    if values.size == 0:
        report.section("Edge decision latency", "<p>No exposures.</p>")
        return
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    fig, ax = figure(7.0, 3.4)
    top = max(float(np.percentile(values, 99.9)), p99 * 1.2)
    ax.hist(np.clip(values, 0, top), bins=60, color=COLORS[0])
    for q, label, color in ((p50, "p50", "green"), (p99, "p99", "orange")):
        ax.axvline(q, color=color, linestyle="--", label=f"{label} {q:.0f} µs")
    if budget_us <= top * 1.5:
        ax.axvline(budget_us, color="red", label=f"budget {budget_us} µs")
    ax.set_yscale("log")
    ax.set_xlabel("decision time per request (µs, exposures' decision_us)")
    ax.set_ylabel("exposures")
    ax.legend()
    body = report.image(png(fig), "edge decision latency histogram")
    body += _table(
        ["exposures", "p50 µs", "p95 µs", "p99 µs", "max µs", "budget µs"],
        [[values.size, f"{p50:.0f}", f"{p95:.0f}", f"{p99:.0f}", f"{values.max():.0f}", budget_us]],
    )
    report.section("Edge decision latency", body)


def volume(report: Report, store: EventStore, config: MonitorConfig) -> list[tuple[int, Alert]]:
    exposures = list(store.exposures())
    if not exposures:
        report.section("Event volume and alerts", "<p>No events.</p>")
        return []
    first = (int(exposures[0]["ts"]) // HOUR_MS) * HOUR_MS
    last = (int(exposures[-1]["ts"]) // HOUR_MS) * HOUR_MS
    counts = store.volume(first, HOUR_MS)
    hours = np.arange(first, last + HOUR_MS, HOUR_MS)
    alerts: list[tuple[int, Alert]] = []
    for end in hours + HOUR_MS:
        for alert in check(store, int(end), config):
            alerts.append((int(end - HOUR_MS), alert))
    fig, ax = figure(7.5, 3.6)
    x = (hours - first) / HOUR_MS
    kinds = sorted({k for k, _ in counts})
    for n, kind in enumerate(kinds):
        ax.plot(
            x,
            [counts.get((kind, int(h)), 0) for h in hours],
            label=kind,
            color=COLORS[n],
            marker=".",
        )
    warmup = config.history
    ax.axvspan(
        -0.5,
        min(warmup, x[-1] + 0.5),
        color="grey",
        alpha=0.12,
        label=f"monitor warm-up (< {warmup} h of history)",
    )
    peak = max(counts.values(), default=1)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(0, peak * 6)
    for n, (start, _alert) in enumerate(alerts):
        ax.axvline(
            (start - first) / HOUR_MS,
            color="red",
            alpha=0.6,
            linestyle=":",
            label="alert" if n == 0 else None,
        )
        ax.annotate(
            "!",
            ((start - first) / HOUR_MS, peak * 2.5),
            color="red",
            ha="center",
            fontsize=11,
            fontweight="bold",
        )
    ax.set_xlabel("hour")
    ax.set_ylabel("events per hour")
    ax.legend(fontsize=8, loc="lower left")
    body = report.image(png(fig), "event volume over time with monitor alerts")
    rows = [[_when(start), a.kind, a.subject, a.message] for start, a in alerts]
    body += (
        f'<p class="note">Hourly events from {_when(first)} UTC; the monitor was run at the end '
        f"of every hour ({len(alerts)} alerts; during the first {warmup} hours its expected "
        "level still counts empty hours, so traffic starting looks like a spike).</p>"
    )
    body += _table(["window (UTC)", "kind", "subject", "message"], rows) if rows else ""
    stats = latency_percentiles(store, first, last + HOUR_MS)
    if stats:
        body += f'<p class="note">decision_us over the whole period: p99 {stats["p99"]:.0f} µs.</p>'
    report.section("Event volume and alerts", body)
    return alerts


def off_policy(report: Report, results: Sequence[SlotResult]) -> None:
    parts = [
        '<p class="note">Per slot, policy draws only: the logged click-through rate, and what each '
        "target policy would have earned on the same visitors (IPS, SNIPS, doubly robust), with "
        "95% bootstrap intervals. <i>logging</i> replays each row's own policy (a check), "
        "<i>current</i> is the current snapshot, <i>greedy</i> the current snapshot without "
        "exploration, <i>uniform</i> a uniform split. The current snapshot was learned from these "
        "rows, so its estimate is optimistic.</p>"
    ]
    rows: list[list[Any]] = []
    for res in results:
        if not res.estimates:
            continue
        labels: list[str] = []
        values: list[tuple[float, float, float]] = []
        for target, est in res.estimates.items():
            for name, e in est.items():
                labels.append(f"{target} · {name}")
                values.append((e.value, e.low, e.high))
                rows.append(
                    [
                        res.slot,
                        target,
                        name,
                        f"{e.value:.2%}",
                        f"[{e.low:.2%}, {e.high:.2%}]",
                        f"{e.width:.2%}",
                        e.n,
                        f"{e.ess:.0f}",
                    ]
                )
        v = np.asarray(values) * 100
        fig, ax = figure(7.0, 0.28 * len(labels) + 1.3)
        y = np.arange(len(labels))[::-1]
        colors = [COLORS[i % 3] for i in range(len(labels))]
        for yi, (c, lo, hi), color in zip(y, v, colors, strict=True):
            ax.errorbar(c, yi, xerr=[[c - lo], [hi - c]], fmt="o", capsize=3, color=color)
        if res.on_policy:
            ax.axvline(
                res.on_policy.value * 100,
                color="grey",
                linestyle="--",
                label=f"logged {res.on_policy.value:.2%}",
            )
            ax.legend(fontsize=8)
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_xlabel("estimated click-through rate (%)")
        ax.set_title(f"slot {res.slot}: {res.rows} policy draws")
        parts.append(report.image(png(fig), f"off-policy estimates: {res.slot}"))
    if rows:
        parts.append(
            _table(
                ["slot", "target", "estimator", "value", "95% interval", "width", "n", "ESS"], rows
            )
        )
    else:
        parts.append("<p>No policy draws to evaluate.</p>")
    report.section("Off-policy evaluation", "".join(parts))


def build(
    store: EventStore,
    registry: Registry,
    *,
    title: str = "edgepick report",
    budget_us: int = 5000,
    resamples: int = 500,
    seed: int = 0,
) -> Report:
    """Every section, rendered; ``Report.render`` gives the page."""
    report = Report(title)
    rows = list(training_rows(store))
    performance(report, rows)
    allocation(report, registry)
    posteriors(report, registry, rows)
    config = MonitorConfig(budget_us=budget_us)
    latency(report, store, budget_us)
    volume(report, store, config)
    off_policy(report, evaluate_store(store, registry, resamples=resamples, seed=seed))
    return report


def write(
    store: EventStore,
    registry: Registry,
    out: Path,
    *,
    budget_us: int = 5000,
    resamples: int = 500,
    seed: int = 0,
) -> Report:
    """Build the report and write the HTML file; returns the report (figure count, headings)."""
    report = build(store, registry, budget_us=budget_us, resamples=resamples, seed=seed)
    current = registry.current() or "none"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = (
        f"{store.count('exposure')} exposures, {store.count('click')} clicks, "
        f"{store.count('conversion')} conversions · current snapshot {html.escape(current)} · "
        f"{len(registry.ids())} snapshots · generated {now}"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.render(subtitle), encoding="utf-8")
    return report
