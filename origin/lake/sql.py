"""The aggregation, written once as SQL over the lake's ``events`` table.

The same text runs on DuckDB and on Spark SQL (``origin.lake.engines``); it uses only what both
parse the same way: ``ROW_NUMBER() OVER``, ``CASE``, ``COALESCE``, ``LEAST``/``GREATEST``,
``concat``, ``substr``/``instr``, ``%`` on integers and ``try_element_at(list, i)`` (1-based,
NULL past the end: Spark's built-in, a one-line macro in DuckDB). Doubles are written as
``CAST('x' AS DOUBLE)``: a literal like ``1.0`` is a DECIMAL in both.

It computes, for the exposures with ``lo <= ts < hi``, exactly what ``origin.training`` and
``origin.aggregates.Summer`` compute from the store, per (hour window, key, variant, learnable):

- **attribution** (``origin.store.SqliteStore.credit_sql``): an outcome of the same visitor that
  names the decision, or names none (visitor-level), from ``SKEW_MS`` before the exposure on;
  one outcome (its id after the first ``:``) credits a decision once, at its earliest arrival
  ``dt``, with its largest value; clicks count within the click window, conversions and their
  values within the conversion window;
- **reward** ``r = w_click [clicks > 0] + w_conversion [conversions > 0] + w_value value``;
- **learnable**: a policy draw (reason ``policy`` or ``fallback``) among the first ``cap`` of its
  visitor, slot and UTC day in (ts, id) order (``origin.training.rows_from``): ranks count the
  day's draws before ``lo`` too, so the query reads exposures from the day's start;
- **key**: the slot (``seg = 0``), and ``slot@segment`` (``seg = 1``) for an exposure with a
  segment (``segment_key``);
- **sums**, over ``z = [1, x]``: ``n``, ``successes = sum clip(r, 0, 1)``, ``reward = sum r``,
  and over the ``m`` rows whose feature vector has the key's width: ``yty = sum r^2``,
  ``xtx_i_j = sum z_i z_j`` (i <= j, the upper triangle), ``xty_i = sum z_i r``. Each row's
  ``g_i = [width ok] z_i`` is computed once (one list lookup per feature, not per product);
  ``g_i g_j`` is exactly ``z_i z_j`` on the rows that count and 0 on the others;
- **the report's sums**, whatever the reward weighs: ``clicked = sum [clicks > 0]``,
  ``converted = sum [conversions > 0]``, ``revenue = sum v`` and ``revenue2 = sum v^2`` (``v``
  the credited conversions' value), what ``edgepick report`` tabulates per arm
  (``origin.lake.report``).

**Each event id counts once**: the lake may hold an event twice (a redelivery after the hot
buffer let go of its id lands again until compaction drops the copy,
``origin.lake.retention``), as the store never does. Exposures are deduplicated by id first
(``exposed``: the copy with the earliest ``ts``, as compaction keeps); a repeated outcome
changes nothing anyway (``credit`` groups by the outcome's id), and ``outc`` drops identical
copies before the joins.

Outcomes are read from ``lo - SKEW_MS`` on with no upper bound: an outcome arriving after its
window does not count, but its value still enters ``MAX(value)`` as in the store's query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from origin.store import SKEW_MS
from origin.training import LEARNABLE_REASONS, VISITOR_CAP, Reward, Windows

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Query:
    lo: int  # exposures from (ms, an hour's start)
    hi: int  # exposures before (ms, an hour's start)
    windows: Windows
    reward: Reward
    max_width: int
    cap: int = VISITOR_CAP


def _double(x: float) -> str:
    return f"CAST('{float(x)!r}' AS DOUBLE)"


def _z(i: int) -> str:
    if i == 0:
        return _double(1.0)
    return f"COALESCE(try_element_at(k.features, {i}), {_double(0)})"


def columns(max_width: int) -> tuple[list[tuple[int, int]], list[int]]:
    """The (i, j) pairs of the ``xtx_i_j`` columns and the i of the ``xty_i`` columns."""
    size = max_width + 1
    return [(i, j) for i in range(size) for j in range(i, size)], list(range(size))


def aggregation_sql(q: Query) -> str:
    """The query text (see the module docstring); reads the views ``events`` and ``widths``."""
    day_start = q.lo - q.lo % DAY_MS
    reasons = ", ".join(f"'{r}'" for r in sorted(LEARNABLE_REASONS))
    ok = "(k.fwidth = COALESCE(w.width, 0))"
    pairs, singles = columns(q.max_width)
    zero = _double(0)
    gates = [f"CASE WHEN {ok} THEN {_z(i)} ELSE {zero} END AS g_{i}" for i in singles]
    sums = [f"SUM(g_{i} * g_{j}) AS xtx_{i}_{j}" for i, j in pairs]
    sums += [f"SUM(g_{i} * r) AS xty_{i}" for i in singles]
    ref = "substr(o.id, instr(o.id, ':') + 1)"
    cw, vw = q.windows.click_ms, q.windows.conversion_ms
    one = _double(1)
    return f"""
WITH exposed AS (
  SELECT id, ts, visitor, slot, variant, reason, segment, features, width FROM (
    SELECT id, ts, visitor, slot, variant, reason, segment, features, width,
      ROW_NUMBER() OVER (PARTITION BY id ORDER BY ts, visitor, slot, variant, reason) AS copy
    FROM events WHERE type = 'exposure' AND ts >= {day_start} AND ts < {q.hi}
  ) x WHERE copy = 1
),
ranks AS (
  SELECT id, CASE WHEN reason IN ({reasons}) THEN ROW_NUMBER() OVER (
      PARTITION BY visitor, slot, ts - ts % {DAY_MS}, reason IN ({reasons})
      ORDER BY ts, id) END AS rk
  FROM exposed
),
target AS (
  SELECT e.id, e.ts, e.visitor, e.slot, e.variant, COALESCE(e.segment, '') AS segment,
    e.features, COALESCE(e.width, 0) AS fwidth, r.rk
  FROM exposed e JOIN ranks r ON r.id = e.id
  WHERE e.ts >= {q.lo}
),
outc AS (
  SELECT DISTINCT id, type, ts, visitor, COALESCE(decision, '') AS decision,
    COALESCE(value, {zero}) AS value
  FROM events WHERE type IN ('click', 'conversion') AND ts >= {q.lo - SKEW_MS}
),
credit AS (
  SELECT eid, type, ref, MIN(dt) AS dt, MAX(value) AS value FROM (
    SELECT e.id AS eid, o.type AS type, {ref} AS ref, o.ts - e.ts AS dt, o.value AS value
    FROM target e JOIN outc o ON o.decision = e.id AND o.visitor = e.visitor
    WHERE o.ts >= e.ts - {SKEW_MS}
    UNION ALL
    SELECT e.id AS eid, o.type AS type, {ref} AS ref, o.ts - e.ts AS dt, o.value AS value
    FROM target e JOIN outc o ON o.visitor = e.visitor AND o.decision = ''
    WHERE o.ts >= e.ts - {SKEW_MS}
  ) c GROUP BY eid, type, ref
),
per AS (
  SELECT eid,
    SUM(CASE WHEN type = 'click' AND dt <= {cw} THEN 1 ELSE 0 END) AS n_clk,
    SUM(CASE WHEN type = 'conversion' AND dt <= {vw} THEN 1 ELSE 0 END) AS n_conv,
    SUM(CASE WHEN type = 'conversion' AND dt <= {vw} THEN value ELSE {zero} END) AS total
  FROM credit GROUP BY eid
),
rewarded AS (
  SELECT t.ts, t.slot, t.variant, t.segment, t.features, t.fwidth,
    {_double(q.reward.click)} * (CASE WHEN COALESCE(p.n_clk, 0) > 0 THEN {one} ELSE {zero} END)
    + {_double(q.reward.conversion)}
      * (CASE WHEN COALESCE(p.n_conv, 0) > 0 THEN {one} ELSE {zero} END)
    + {_double(q.reward.value)} * COALESCE(p.total, {zero}) AS r,
    CASE WHEN COALESCE(p.n_clk, 0) > 0 THEN 1 ELSE 0 END AS clk,
    CASE WHEN COALESCE(p.n_conv, 0) > 0 THEN 1 ELSE 0 END AS conv,
    COALESCE(p.total, {zero}) AS val,
    CASE WHEN t.rk IS NOT NULL AND t.rk <= {q.cap} THEN 1 ELSE 0 END AS learnable
  FROM target t LEFT JOIN per p ON p.eid = t.id
),
keyed AS (
  SELECT ts, slot AS key, 0 AS seg, variant, features, fwidth, r, learnable, clk, conv, val
  FROM rewarded
  UNION ALL
  SELECT ts, concat(slot, '@', segment) AS key, 1 AS seg, variant, features, fwidth, r,
    learnable, clk, conv, val
  FROM rewarded WHERE segment <> ''
),
gated AS (
  SELECT k.ts - k.ts % {HOUR_MS} AS hour_ms, k.key AS key, k.seg AS seg, k.variant AS variant,
    k.learnable AS learnable, k.r AS r, k.clk AS clk, k.conv AS conv, k.val AS val,
    {(", " + chr(10) + "    ").join(gates)}
  FROM keyed k LEFT JOIN widths w ON w.key = k.key
)
SELECT hour_ms, key, seg, variant, learnable, COUNT(*) AS n,
  SUM(LEAST(GREATEST(r, {zero}), {one})) AS successes, SUM(r) AS reward,
  SUM(CASE WHEN g_0 > {zero} THEN 1 ELSE 0 END) AS m, SUM(g_0 * r * r) AS yty,
  SUM(clk) AS clicked, SUM(conv) AS converted, SUM(val) AS revenue, SUM(val * val) AS revenue2,
  {(", " + chr(10) + "  ").join(sums)}
FROM gated
GROUP BY hour_ms, key, seg, variant, learnable
ORDER BY hour_ms, key, variant, learnable
"""


def widths_rows(widths: Mapping[str, int]) -> list[tuple[str, int]]:
    """The ``widths(key, width)`` view's rows (keys not listed have width 0)."""
    return sorted((k, int(w)) for k, w in widths.items())
