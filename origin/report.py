"""``edgepick report``: one static HTML page with the numbers a marketer decides with.

Sections (every plot is a PNG embedded as a ``data:`` URI, so the file stands alone):

1. **Personalization lift**: visitors in the site's holdout (every decision the default) against
   personalized visitors, per visitor: clicks, conversion (converted at least once), revenue;
   the relative lift with a 95% delta-method interval (``relative_lift``).
2. **Variant performance**: per slot and variant, click-through and conversion rate per
   exposure with 95% Wilson score intervals (Wilson 1927, "Probable inference, the law of
   succession, and statistical inference", JASA 22):

       (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n),   z = 1.96

   and revenue per exposure with a normal interval for a mean (``mean_interval``).
3. **Audiences and channels**: the same per-visitor numbers and the holdout lift within each
   audience the store can tell (the site's audiences whose conditions read only ``device`` and
   ``country``, which every exposure logs) and each arrival channel (newsletter, search,
   social, direct/other: read from the request features the edge logged for linear slots).
4. **Core Web Vitals**: p75 of LCP, INP, CLS and TTFB per (slot, arm, holdout) and for
   personalized against holdout pages (``origin.monitor.vitals_p75``).
5. **Allocation over time**: the Thompson weights (and linear slots' cold-start allocation) of
   every snapshot in the registry, by creation time (one point per publish).
6. **Posterior curves**: the Beta posteriors ``Beta(1 + s, 1 + n - s)`` the learner samples for
   each variant of the Thompson slots (policy draws only, as the learner uses).
7. **Edge decision latency**: histogram of the exposures' ``decision_us``, with p50/p99 and
   the budget.
8. **Event volume and alerts**: events per hour and type; the monitor (``origin.monitor.check``)
   is run at the end of every hour with an ``AlertBook``, so each alert is listed once, from
   when it opened to when it closed.
9. **Off-policy evaluation**: ``origin.evaluate`` per slot (IPS, SNIPS, DR with bootstrap
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

from core.conditions import attribute_names, evaluate
from core.model import LinearPolicy, Site, ThompsonPolicy
from core.snapshot import decode_snapshot
from origin.evaluate import SlotResult, evaluate_store
from origin.monitor import (
    COMPARED,
    GOOD,
    AlertBook,
    Episode,
    MonitorConfig,
    check,
    vitals_p75,
)
from origin.plots import COLORS, data_uri, figure, png
from origin.registry import Registry
from origin.store import EventStore
from origin.training import training_rows

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


def mean_interval(
    values: np.ndarray, z: float = 1.96, floor: float | None = 0.0
) -> tuple[float, float, float]:
    """A mean with its normal (central limit) interval ``mean +- z s / sqrt(n)``, ``s`` the
    sample standard deviation (Kohavi, Tang & Xu 2020, "Trustworthy Online Controlled
    Experiments", ch. 17); the low end is raised to ``floor`` (revenue is never negative).
    Revenue per exposure or visitor is mostly zeros with a long tail: at a few hundred
    conversions the mean is close to normal, below that read it as rough."""
    n = len(values)
    if n == 0:
        return 0.0, 0.0, 0.0
    mean = float(np.mean(values))
    if n < 2:
        return mean, mean, mean
    half = z * float(np.std(values, ddof=1)) / math.sqrt(n)
    low = mean - half if floor is None else max(floor, mean - half)
    return mean, low, mean + half


@dataclass(frozen=True, slots=True)
class Lift:
    """Personalized against holdout: the means, and the relative lift with its interval."""

    treated: float
    control: float
    n_treated: int
    n_control: int
    lift: float | None  # treated / control - 1; None when the control mean is 0 or n < 2
    low: float | None
    high: float | None


def relative_lift(treated: np.ndarray, control: np.ndarray, z: float = 1.96) -> Lift:
    """``lift = m_t / m_c - 1`` for two independent groups' per-unit means, with the delta
    method's interval on the log of the ratio (Deng, Knoblich & Lu 2018, "Applying the delta
    method in metric analytics", KDD; the log form as Katz et al. 1978, Biometrics 34, for risk
    ratios), which stays above -100% and is asymmetric as a ratio's uncertainty is:

        Var(log m_t - log m_c) ~= s_t^2 / (n_t m_t^2) + s_c^2 / (n_c m_c^2)
        lift in [exp(log(m_t / m_c) -+ z sqrt(Var)) - 1]

    Units are visitors (the holdout is drawn per visitor), so the rows are independent. No
    interval when either mean is 0 or a group has fewer than 2 visitors."""
    nt, nc = len(treated), len(control)
    mt = float(np.mean(treated)) if nt else 0.0
    mc = float(np.mean(control)) if nc else 0.0
    if nt < 2 or nc < 2 or mc <= 0 or mt <= 0:
        return Lift(mt, mc, nt, nc, None, None, None)
    vt, vc = float(np.var(treated, ddof=1)), float(np.var(control, ddof=1))
    half = z * math.sqrt(vt / (nt * mt * mt) + vc / (nc * mc * mc))
    ratio = math.log(mt / mc)
    return Lift(
        mt, mc, nt, nc, mt / mc - 1.0, math.exp(ratio - half) - 1.0, math.exp(ratio + half) - 1.0
    )


@dataclass(slots=True)
class Moments:
    """``n``, ``total = sum x`` and ``squares = sum x^2`` of a sample: what a mean, its interval
    and the delta method need, mergeable (sums), so a report can be built from aggregates:

        mean = total / n,   s^2 = (squares - total^2 / n) / (n - 1)"""

    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        self.total += x
        self.squares += x * x

    def merge(self, other: Moments) -> None:
        self.n += other.n
        self.total += other.total
        self.squares += other.squares

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    def var(self) -> float:
        """The sample variance (``ddof = 1``), 0 below two values (never negative: rounding)."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.squares - self.total * self.total / self.n) / (self.n - 1))


def moments_interval(
    m: Moments, z: float = 1.96, floor: float | None = 0.0
) -> tuple[float, float, float]:
    """``mean_interval`` from a sample's ``Moments``: ``mean +- z s / sqrt(n)``."""
    if m.n == 0:
        return 0.0, 0.0, 0.0
    if m.n < 2:
        return m.mean, m.mean, m.mean
    half = z * math.sqrt(m.var()) / math.sqrt(m.n)
    low = m.mean - half if floor is None else max(floor, m.mean - half)
    return m.mean, low, m.mean + half


def moments_lift(treated: Moments, control: Moments, z: float = 1.96) -> Lift:
    """``relative_lift`` from the two groups' ``Moments`` (the same formula)."""
    nt, nc, mt, mc = treated.n, control.n, treated.mean, control.mean
    if nt < 2 or nc < 2 or mc <= 0 or mt <= 0:
        return Lift(mt, mc, nt, nc, None, None, None)
    half = z * math.sqrt(treated.var() / (nt * mt * mt) + control.var() / (nc * mc * mc))
    ratio = math.log(mt / mc)
    return Lift(
        mt, mc, nt, nc, mt / mc - 1.0, math.exp(ratio - half) - 1.0, math.exp(ratio + half) - 1.0
    )


@dataclass(frozen=True, slots=True, order=True)
class CellKey:
    """What the report groups visitors by: holdout membership, device and country (first
    exposure) and arrival channel (``visitors``)."""

    holdout: bool
    device: str
    country: str
    channel: str


@dataclass(slots=True)
class Cell:
    """The visitors of one ``CellKey``: per visitor, clicks, converted (0/1) and revenue."""

    clicks: Moments = field(default_factory=Moments)
    converted: Moments = field(default_factory=Moments)
    revenue: Moments = field(default_factory=Moments)

    @property
    def visitors(self) -> int:
        return self.clicks.n

    def merge(self, other: Cell) -> None:
        self.clicks.merge(other.clicks)
        self.converted.merge(other.converted)
        self.revenue.merge(other.revenue)


@dataclass(slots=True)
class Arm:
    """One slot's variant over all its exposures (``n``; exposures with a click, with a
    conversion, and the credited value's moments) and over its policy draws within the visitor
    cap (``draws``, ``successes = sum clip(r, 0, 1)``, the posteriors' counts)."""

    n: int = 0
    clicked: int = 0
    converted: int = 0
    revenue: Moments = field(default_factory=Moments)
    draws: int = 0
    successes: float = 0.0


@dataclass
class Facts:
    """Everything the report's per-visitor, per-arm, latency and volume sections read: from the
    store (``store_facts``, every raw event) or from the lake (``origin.lake.report``,
    aggregates computed by DuckDB), so the two give the same page."""

    cells: dict[CellKey, Cell]
    arms: dict[tuple[str, str], Arm]
    latency: np.ndarray  # every measured decision_us
    volume: dict[tuple[str, int], int]  # events per (type, hour) from the first exposure's hour
    counts: dict[str, int]  # events per type
    first_ms: int | None  # the first and last exposure's time
    last_ms: int | None
    source: str = "store"


def cells_of(people: dict[str, VisitorSummary]) -> dict[CellKey, Cell]:
    """Visitors summed into cells (``CellKey``)."""
    cells: dict[CellKey, Cell] = {}
    for v in people.values():
        cell = cells.setdefault(CellKey(v.holdout, v.device, v.country, v.channel), Cell())
        cell.clicks.add(float(v.clicks))
        cell.converted.add(1.0 if v.conversions else 0.0)
        cell.revenue.add(v.revenue)
    return cells


def store_facts(store: EventStore, registry: Registry) -> Facts:
    """``Facts`` from the store's raw events (every exposure and outcome read once; the
    training rows streamed, not kept)."""
    arms: dict[tuple[str, str], Arm] = {}
    for r in training_rows(store):
        arm = arms.setdefault((r.slot, r.variant), Arm())
        arm.n += 1
        arm.clicked += r.clicks > 0
        arm.converted += r.conversions > 0
        arm.revenue.add(r.value)
        if r.learnable:
            arm.draws += 1
            arm.successes += min(max(r.reward, 0.0), 1.0)
    measured: list[float] = []
    first = last = None
    for e in store.exposures():
        first = e["ts"] if first is None else first
        last = e["ts"]
        if e["decision_us"] is not None:
            measured.append(float(e["decision_us"]))
    volume = store.volume((int(first) // HOUR_MS) * HOUR_MS, HOUR_MS) if first is not None else {}
    counts = {k: store.count(k) for k in ("exposure", "click", "conversion")}
    return Facts(
        cells_of(visitors(store, registry)),
        arms,
        np.asarray(measured, dtype=float),
        volume,
        counts,
        None if first is None else int(first),
        None if last is None else int(last),
    )


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


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


def _lift_text(lift: Lift) -> str:
    if lift.lift is None or lift.low is None or lift.high is None:
        return "n/a"
    return f"{lift.lift:+.1%} [{lift.low:+.1%}, {lift.high:+.1%}]"


@dataclass(slots=True)
class VisitorSummary:
    """One visitor's exposures and outcomes, and what the store tells about them."""

    visitor: str
    holdout: bool = False
    device: str = ""
    country: str = ""
    channel: str = "unknown"
    exposures: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: float = 0.0


CHANNELS: tuple[tuple[str, str], ...] = (
    ("utm:newsletter", "newsletter"),
    ("referrer:search", "search"),
    ("referrer:social", "social"),
)


def _site_of(registry: Registry, snapshot: str, cache: dict[str, Site | None]) -> Site | None:
    if snapshot not in cache:
        try:
            cache[snapshot] = decode_snapshot(registry.get(snapshot)).site
        except (KeyError, FileNotFoundError, ValueError):
            cache[snapshot] = None
    return cache[snapshot]


def visitors(store: EventStore, registry: Registry) -> dict[str, VisitorSummary]:
    """Every exposed visitor with its outcome counts (distinct events: clicks, conversions and
    their value), holdout membership (the holdout is per visitor: every decision ``holdout``),
    device and country (first exposure) and arrival channel: the first linear-slot exposure
    whose features include ``utm:newsletter`` / ``referrer:search`` / ``referrer:social`` gives
    newsletter, search, social, else direct/other; no such exposure: unknown."""
    out: dict[str, VisitorSummary] = {}
    sites: dict[str, Site | None] = {}
    for e in store.exposures():
        v = out.get(e["visitor"])
        if v is None:
            v = out[e["visitor"]] = VisitorSummary(e["visitor"], device=e["device"])
            v.country = e["country"]
        v.exposures += 1
        v.holdout = v.holdout or e["reason"] == "holdout"
        if v.channel != "unknown" or not e["features"]:
            continue
        site = _site_of(registry, e["snapshot"], sites)
        slot = next((s for s in site.slots if s.name == e["slot"]), None) if site else None
        if slot is None or not isinstance(slot.policy, LinearPolicy):
            continue
        names = slot.policy.features
        if not any(f in names for f, _ in CHANNELS) or len(names) != len(e["features"]):
            continue
        values = dict(zip(names, e["features"], strict=True))
        v.channel = next((c for f, c in CHANNELS if values.get(f, 0.0) > 0), "direct/other")
    for o in store.outcomes():
        v = out.get(o["visitor"])
        if v is None:
            continue
        if o["type"] == "click":
            v.clicks += 1
        elif o["type"] == "conversion":
            v.conversions += 1
            v.revenue += float(o.get("value") or 0.0)
    return out


METRICS = (
    ("clicks per visitor", lambda v: float(v.clicks)),
    ("conversion rate", lambda v: 1.0 if v.conversions else 0.0),
    ("revenue per visitor", lambda v: v.revenue),
)


def _metric(name: str, value: float) -> str:
    if name.startswith("revenue"):
        return f"{value:.2f}"
    return f"{value:.2%}" if "rate" in name else f"{value:.3f}"


def _pooled(cells: Sequence[tuple[CellKey, Cell]], holdout: bool) -> Cell:
    out = Cell()
    for key, cell in cells:
        if key.holdout == holdout:
            out.merge(cell)
    return out


def _lifts(cells: Sequence[tuple[CellKey, Cell]]) -> list[tuple[str, Lift]]:
    """``METRICS``' lifts of personalized over holdout visitors, from the cells' moments."""
    treated, control = _pooled(cells, False), _pooled(cells, True)
    return [
        ("clicks per visitor", moments_lift(treated.clicks, control.clicks)),
        ("conversion rate", moments_lift(treated.converted, control.converted)),
        ("revenue per visitor", moments_lift(treated.revenue, control.revenue)),
    ]


def holdout_lift(report: Report, cells: dict[CellKey, Cell]) -> None:
    group = sorted(cells.items())
    total = sum(c.visitors for _, c in group)
    held = sum(c.visitors for k, c in group if k.holdout)
    if not total or not held or held == total:
        report.section(
            "Personalization lift",
            "<p>No holdout visitors to compare with (set <code>holdout</code> in the site).</p>",
        )
        return
    lifts = _lifts(group)
    rows: list[list[Any]] = []
    for name, lift in lifts:
        rows.append(
            [
                name,
                _metric(name, lift.treated),
                _metric(name, lift.control),
                _lift_text(lift),
                lift.n_treated,
                lift.n_control,
            ]
        )
    fig, ax = figure(7.0, 2.6)
    y = np.arange(len(lifts))[::-1]
    for yi, (_name, lift) in zip(y, lifts, strict=True):
        if lift.lift is None or lift.low is None or lift.high is None:
            continue
        ax.errorbar(
            lift.lift * 100,
            yi,
            xerr=[[(lift.lift - lift.low) * 100], [(lift.high - lift.lift) * 100]],
            fmt="o",
            capsize=4,
            color=COLORS[0],
        )
    ax.axvline(0, color="grey", linestyle="--")
    ax.set_yticks(y, [n for n, _ in lifts])
    ax.set_xlabel("lift of personalized over holdout visitors (%, 95% interval)")
    body = (
        f'<p class="note">{total - held} personalized and {held} holdout visitors (the '
        "holdout always gets the defaults). Lift = personalized / holdout - 1 per visitor, "
        "with a 95% delta-method interval on the log of the ratio; an interval across 0 means "
        "the data cannot tell "
        "personalization from the defaults yet.</p>"
    )
    body += report.image(png(fig), "personalization lift over the holdout")
    body += _table(
        ["metric", "personalized", "holdout", "lift [95%]", "visitors", "holdout visitors"], rows
    )
    report.section("Personalization lift", body)


def _audiences(site: Site | None) -> list[tuple[str, dict[str, Any]]]:
    """The site's audiences that the logged ``device`` and ``country`` decide."""
    if site is None:
        return []
    return [
        (a.name, a.condition)
        for a in site.audiences
        if attribute_names(a.condition) and attribute_names(a.condition) <= {"device", "country"}
    ]


def segments(report: Report, cells: dict[CellKey, Cell], site: Site | None) -> None:
    group = sorted(cells.items())
    if not group:
        report.section("Audiences and channels", "<p>No visitors.</p>")
        return
    views: list[tuple[str, str, list[tuple[CellKey, Cell]]]] = []
    for name, condition in _audiences(site):
        member = [evaluate(condition, {"device": k.device, "country": k.country}) for k, _ in group]
        views.append(("audience", name, [c for c, m in zip(group, member, strict=True) if m]))
        outside = [c for c, m in zip(group, member, strict=True) if not m]
        views.append(("audience", f"not {name}", outside))
    for channel in sorted({k.channel for k, _ in group}):
        views.append(("channel", channel, [(k, c) for k, c in group if k.channel == channel]))
    rows: list[list[Any]] = []
    labels: list[str] = []
    bars: list[tuple[float, float, float]] = []
    for kind, name, members in views:
        pooled = Cell()
        for _, cell in members:
            pooled.merge(cell)
        if not pooled.visitors:
            continue
        clicks = moments_interval(pooled.clicks)
        revenue = moments_interval(pooled.revenue)
        converted = round(pooled.converted.total)
        lo, hi = wilson(converted, pooled.visitors)
        lifts = dict(_lifts(members))
        rows.append(
            [
                kind,
                name,
                pooled.visitors,
                sum(c.visitors for k, c in members if k.holdout),
                f"{clicks[0]:.3f}",
                f"{converted / pooled.visitors:.2%} [{lo:.2%}, {hi:.2%}]",
                f"{revenue[0]:.2f} [{revenue[1]:.2f}, {revenue[2]:.2f}]",
                _lift_text(lifts["clicks per visitor"]),
                _lift_text(lifts["revenue per visitor"]),
            ]
        )
        labels.append(f"{kind}: {name} (n={pooled.visitors})")
        bars.append(revenue)
    fig, ax = figure(7.0, 0.35 * len(labels) + 1.2)
    y = np.arange(len(labels))[::-1]
    for yi, (m, lo, hi) in zip(y, bars, strict=True):
        ax.errorbar(m, yi, xerr=[[m - lo], [hi - m]], fmt="o", capsize=3, color=COLORS[1])
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("revenue per visitor (95% interval)")
    unread = (
        [a.name for a in site.audiences if (a.name, a.condition) not in _audiences(site)]
        if site
        else []
    )
    body = (
        '<p class="note">Per visitor, within each audience and arrival channel: conversion rate '
        "(95% Wilson), revenue (95% normal interval) and the lift of personalized over holdout "
        "visitors in the group (95% delta method; n/a without holdout visitors or outcomes in "
        "the group: the holdout is small, so these intervals are wide). Audiences are those "
        "the logged device and country decide"
        + (f"; not readable from the store: {html.escape(', '.join(unread))}" if unread else "")
        + ". Channel: from the request features the edge logged with a linear slot's decision "
        "(newsletter, search, social, else direct/other); holdout decisions log no features, "
        "so holdout visitors' channel is unknown and per-channel lift is n/a until exposures "
        "carry the channel.</p>"
    )
    body += report.image(png(fig), "revenue per visitor by audience and channel")
    body += _table(
        [
            "view",
            "group",
            "visitors",
            "holdout",
            "clicks / visitor",
            "conversion [95%]",
            "revenue / visitor [95%]",
            "click lift [95%]",
            "revenue lift [95%]",
        ],
        rows,
    )
    report.section("Audiences and channels", body)


def web_vitals(report: Report, store: EventStore) -> None:
    rows = vitals_p75(store, 0, 2**62)
    if not rows:
        report.section("Core Web Vitals", "<p>No real-user vitals in the store.</p>")
        return
    table: dict[tuple[str, str, bool], dict[str, Any]] = {}
    for r in rows:
        entry = table.setdefault((r.slot, r.variant, r.holdout), {"pages": 0})
        entry[r.metric] = r.p75
        entry["pages"] = max(entry["pages"], r.pages)

    def shown(metric: str, value: float | None) -> str:
        if value is None:
            return ""
        text = f"{value:.3f}" if metric == "cls" else f"{value:.0f}"
        good = GOOD.get(metric)
        return f"{text} !" if good is not None and value >= good else text

    keys = sorted(table, key=lambda k: (k[0] == "", k))
    out_rows = [
        [
            f"{slot}/{variant}" if slot else f"{variant} pages",
            "yes" if held else "",
            table[(slot, variant, held)]["pages"],
        ]
        + [shown(m, table[(slot, variant, held)].get(m)) for m in COMPARED]
        for slot, variant, held in keys
    ]
    arms = [k for k in keys if k[0] and "lcp" in table[k]]
    fig, ax = figure(7.0, 0.3 * len(arms) + 1.3)
    y = np.arange(len(arms))[::-1]
    colors = [COLORS[2] if held else COLORS[0] for _, _, held in arms]
    ax.barh(y, [table[k]["lcp"] for k in arms], color=colors)
    ax.axvline(GOOD["lcp"], color="red", linestyle="--", label="'good' LCP 2.5 s")
    ax.set_yticks(y, [f"{s}/{v}{' (holdout)' if h else ''}" for s, v, h in arms], fontsize=7)
    ax.set_xlabel("LCP p75 (ms) per arm")
    _legend(ax, fontsize=8)
    body = (
        '<p class="note">p75 of what visitors\' browsers measured, per arm (a page counts once '
        "for each decision it showed) and for personalized against holdout pages; ! marks a "
        "p75 over web.dev's 'good' threshold (LCP 2.5 s, INP 200 ms, CLS 0.1). Holdout arms "
        "are green.</p>"
    )
    body += report.image(png(fig), "LCP p75 per arm")
    body += _table(["arm", "holdout", "pages", "LCP ms", "INP ms", "CLS", "TTFB ms"], out_rows)
    report.section("Core Web Vitals", body)


def performance(report: Report, arms: dict[tuple[str, str], Arm]) -> None:
    by_slot: dict[str, dict[str, list[float]]] = {}
    for (slot, variant), arm in arms.items():
        by_slot.setdefault(slot, {})[variant] = [float(arm.n), arm.clicked, arm.converted]
    if not by_slot:
        report.section("Variant performance", "<p>No exposures in the store.</p>")
        return
    parts = [
        '<p class="note">Per variant over all its exposures: click-through and conversion rate '
        "(an exposure converts when a conversion is attributed to it: within the conversion "
        "window, naming it or naming no decision) with 95% Wilson score intervals, and revenue "
        "per exposure with a 95% normal interval. A visitor-level conversion credits every "
        "decision the visitor was shown, so revenue is not additive across slots.</p>"
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
            conv = variants[v][2]
            clo, chi = wilson(conv, int(ni))
            revenue = arms[(slot, v)].revenue
            rev = moments_interval(revenue)
            table_rows.append(
                [
                    slot,
                    v,
                    int(ni),
                    int(si),
                    f"{c:.2%} [{lo:.2%}, {hi:.2%}]",
                    int(conv),
                    f"{conv / ni:.2%} [{clo:.2%}, {chi:.2%}]",
                    f"{revenue.total:.2f}",
                    f"{rev[0]:.3f} [{rev[1]:.3f}, {rev[2]:.3f}]",
                ]
            )
    parts.append(
        _table(
            [
                "slot",
                "variant",
                "exposures",
                "clicks",
                "CTR [95% Wilson]",
                "conversions",
                "conversion rate [95% Wilson]",
                "revenue",
                "revenue / exposure [95%]",
            ],
            table_rows,
        )
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
        _legend(ax, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
        parts.append(report.image(png(fig), f"allocation over time: {name}"))
    report.section("Allocation over time", "".join(parts))


def posteriors(report: Report, registry: Registry, arms: dict[tuple[str, str], Arm]) -> None:
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
        for vid, pair in counts.items():
            arm = arms.get((slot.name, vid))
            if arm is not None:
                pair[0], pair[1] = float(arm.draws), arm.successes
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
        _legend(ax, fontsize=8)
        parts.append(report.image(png(fig), f"posterior curves: {slot.name}"))
        drawn += 1
    if not drawn:
        parts.append("<p>No Thompson slot in the current snapshot.</p>")
    report.section("Posterior curves", "".join(parts))


def latency(report: Report, values: np.ndarray, budget_us: int) -> None:
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
    _legend(ax)
    body = report.image(png(fig), "edge decision latency histogram")
    body += _table(
        ["exposures", "p50 µs", "p95 µs", "p99 µs", "max µs", "budget µs"],
        [[values.size, f"{p50:.0f}", f"{p95:.0f}", f"{p99:.0f}", f"{values.max():.0f}", budget_us]],
    )
    report.section("Edge decision latency", body)


def volume(report: Report, store: EventStore, config: MonitorConfig, facts: Facts) -> list[Episode]:
    """Events per hour, and the monitor run at the end of every hour with one ``AlertBook``:
    each alert is listed once, from the hour it opened to the check that closed it. The monitor
    reads the store; from a lake, it runs over the hours the store (the hot buffer) holds."""
    if facts.first_ms is None or facts.last_ms is None:
        report.section("Event volume and alerts", "<p>No events.</p>")
        return []
    first = (facts.first_ms // HOUR_MS) * HOUR_MS
    last = (facts.last_ms // HOUR_MS) * HOUR_MS
    counts = facts.volume
    hours = np.arange(first, last + HOUR_MS, HOUR_MS)
    book = AlertBook()
    watched = first
    if facts.source != "store":
        oldest = next(iter(store.exposures()), None)
        watched = (int(oldest["ts"]) // HOUR_MS) * HOUR_MS if oldest else last + HOUR_MS
    for end in hours + HOUR_MS:
        if end > watched:
            check(store, int(end), config, book)
    episodes = book.all()
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
    ax.axvspan(
        -0.5,
        min(24.0, x[-1] + 0.5),
        color="grey",
        alpha=0.12,
        label="first day: no seasonal baseline yet",
    )
    peak = max(counts.values(), default=1)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(0, peak * 6)
    shaded = False
    for episode in episodes:
        start = int(episode.details.get("since", episode.opened_ms - HOUR_MS))
        if episode.kind == "volume":  # the windows the alert is about
            stop = episode.closed_ms or int(hours[-1] + 2 * HOUR_MS)
            ax.axvspan(
                (start - first) / HOUR_MS,
                (stop - HOUR_MS - first) / HOUR_MS,
                color="red",
                alpha=0.15,
                label=None if shaded else "volume alert open",
            )
            shaded = True
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
    _legend(ax, fontsize=8, loc="lower left")
    body = report.image(png(fig), "event volume over time with monitor alerts")
    by_key: dict[str, list[Episode]] = {}
    for e in episodes:
        by_key.setdefault(e.key, []).append(e)
    rows = [
        [
            _when(group[0].opened_ms),
            _when(group[-1].closed_ms) if group[-1].closed_ms else "open",
            len(group),
            sum(e.checks for e in group),
            group[0].kind,
            group[0].subject,
            group[-1].message,
        ]
        for group in sorted(by_key.values(), key=lambda g: (g[0].opened_ms, g[0].key))
    ]
    body += (
        f'<p class="note">Hourly events from {_when(first)} UTC. The monitor was run at the end '
        f"of every hour; one row per alert ({len(by_key)}), however long it stayed open: when it "
        "first opened, when it last closed, how many times it opened (it closes after two hours "
        "without being raised) and how many hourly checks raised it. Volume is judged against "
        "the same hour on earlier days, so the first day is learned, not judged.</p>"
    )
    head = ["first opened (UTC)", "last closed (UTC)", "times opened", "checks", "kind"]
    head += ["subject", "last message"]
    body += _table(head, rows) if rows else "<p>No alerts.</p>"
    if facts.latency.size:
        p99 = float(np.percentile(facts.latency, 99))
        body += f'<p class="note">decision_us over the whole period: p99 {p99:.0f} µs.</p>'
    report.section("Event volume and alerts", body)
    return episodes


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
            _legend(ax, fontsize=8)
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
    facts: Facts | None = None,
    ope_days: float | None = None,
) -> Report:
    """Every section, rendered; ``Report.render`` gives the page. ``facts`` (default: read from
    the store, ``store_facts``) feed the lift, performance, audience, posterior, latency and
    volume sections; the vitals, the monitor and off-policy evaluation read the store (from a
    lake: the hot buffer's recent events), OPE over the last ``ope_days`` when given."""
    report = Report(title)
    facts = facts if facts is not None else store_facts(store, registry)
    current = registry.current_blob()
    site = decode_snapshot(current).site if current else None
    holdout_lift(report, facts.cells)
    performance(report, facts.arms)
    segments(report, facts.cells, site)
    web_vitals(report, store)
    allocation(report, registry)
    posteriors(report, registry, facts.arms)
    config = MonitorConfig(budget_us=budget_us)
    latency(report, facts.latency, budget_us)
    volume(report, store, config, facts)
    since = 0
    if ope_days is not None and facts.last_ms is not None:
        since = max(0, facts.last_ms - int(ope_days * 86_400_000))
    results = evaluate_store(store, registry, resamples=resamples, seed=seed, since_ms=since)
    off_policy(report, results)
    return report


def write(
    store: EventStore,
    registry: Registry,
    out: Path,
    *,
    budget_us: int = 5000,
    resamples: int = 500,
    seed: int = 0,
    facts: Facts | None = None,
    ope_days: float | None = None,
) -> Report:
    """Build the report and write the HTML file; returns the report (figure count, headings)."""
    facts = facts if facts is not None else store_facts(store, registry)
    report = build(
        store,
        registry,
        budget_us=budget_us,
        resamples=resamples,
        seed=seed,
        facts=facts,
        ope_days=ope_days,
    )
    current = registry.current() or "none"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    counts = facts.counts
    subtitle = (
        f"{counts.get('exposure', 0)} exposures, {counts.get('click', 0)} clicks, "
        f"{counts.get('conversion', 0)} conversions · current snapshot {html.escape(current)} · "
        f"{len(registry.ids())} snapshots · generated {now}"
        + (" · from the event lake" if facts.source == "lake" else "")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.render(subtitle), encoding="utf-8")
    return report


def _legend(ax: Any, **options: Any) -> None:
    """A legend when the plot has labelled artists (an empty lake's plots have none: no
    matplotlib "No artists with labels" warning)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**options)
