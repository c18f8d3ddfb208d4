"""Incremental rounds: per-hour aggregates kept between rounds, recomputed where new events land.

State (``<lake>/_aggregates/``): ``windows.parquet``, one row per (hour window, key, variant,
learnable) with the sums of ``origin.lake.sql``, and ``state.json``, the last segment sequence
number folded in and the fingerprint of what the sums depend on (reward weights, attribution
windows, the slots' widths, the visitor cap). A round:

1. takes the segments written since that sequence number (``Lake.after``; compaction rewrites
   are not new events, except that one which dropped duplicate copies marks their hours as
   new events would) and reads only their ``type`` and ``ts`` columns;
2. marks *dirty* hours: for a new exposure at ``t``, from its hour to the end of its UTC day (a
   late policy draw can push the visitor's later draws of that day past the cap); for a new
   outcome that the reward weighs (clicks when ``w_click != 0``, conversions when
   ``w_conversion`` or ``w_value != 0``), the hours of the exposures it may credit,
   ``[t - window, t + SKEW_MS]``;
3. runs the aggregation SQL once over ``[lo, hi)``, the span of the dirty hours, on the segments
   from the day of ``lo`` on, and replaces the state's windows in that span with the result;
4. sums every window (addition: exact up to float rounding, in any order) into the
   ``Aggregates`` the learner takes, for the policy draws and for every exposure.

So a round's cost follows the new events (and the day they land in), not the history. Late
events are merged correctly whatever their lateness, as long as they reach the lake: their hours
are recomputed from the lake, which keeps every event (``origin.lake.retention``). With the
default click reward, a new click dirties the 31 minutes before it; a weighted conversion the
24 hours before it. A fingerprint that changed, or no state, recomputes everything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from origin.aggregates import Aggregates, ArmStats
from origin.lake.engines import Engine
from origin.lake.flush import flush
from origin.lake.segments import DAY_MS, HOUR_MS, Lake, write_atomic
from origin.lake.sql import Query, aggregation_sql, columns, widths_rows
from origin.store import SKEW_MS
from origin.training import VISITOR_CAP, Reward, Windows

STATE_DIR = "_aggregates"
DEFAULT_WINDOWS, DEFAULT_REWARD = Windows(), Reward()


@dataclass
class RoundAggregates:
    learnable: Aggregates  # policy draws within the visitor cap (what the learner fits)
    everything: Aggregates  # every exposure (what retirement judges)
    rows: int
    learnable_rows: int
    recomputed: tuple[int, int] | None  # the [lo, hi) span recomputed, None when nothing new
    files_read: int
    # who the new events name (visitor ids, and the user ids events carry); None after a
    # recomputation from scratch (everyone)
    visitors: frozenset[str] | None = frozenset()
    users: frozenset[str] | None = frozenset()


def _fingerprint(widths: Mapping[str, int], windows: Windows, reward: Reward, cap: int) -> str:
    data = {
        "widths": dict(sorted(widths.items())),
        "windows": asdict(windows),
        "reward": asdict(reward),
        "cap": cap,
        "skew": SKEW_MS,
        "version": 3,  # 2: the report's columns; 3: each event id counted once
    }
    return json.dumps(data, sort_keys=True)


def dirty_span(
    types: np.ndarray, ts: np.ndarray, windows: Windows, reward: Reward
) -> tuple[int, int] | None:
    """The ``[lo, hi)`` span of hours that new events of ``types`` at ``ts`` change (see the
    module docstring), or ``None`` when they change no aggregate."""
    starts: list[int] = []
    ends: list[int] = []
    exposed = ts[types == "exposure"]
    if exposed.size:
        starts.append(int(exposed.min()))
        ends.append(int((exposed - exposed % DAY_MS).max()) + DAY_MS)
    weighed = {"click": (reward.click, windows.click_ms)}
    weighed["conversion"] = (reward.conversion or reward.value, windows.conversion_ms)
    for kind, (weight, window) in weighed.items():
        found = ts[types == kind]
        if weight and found.size:
            starts.append(int(found.min()) - window)
            ends.append(int(found.max()) + SKEW_MS + 1)
    if not starts:
        return None
    lo = min(starts)
    hi = max(ends)
    return lo - lo % HOUR_MS, hi - hi % HOUR_MS + (HOUR_MS if hi % HOUR_MS else 0)


class LakeRounds:
    """A lake, its aggregate state and the engine that recomputes windows."""

    def __init__(
        self, lake: Lake, engine: Engine, cap: int = VISITOR_CAP, state_dir: Path | None = None
    ) -> None:
        self.lake = lake
        self.engine = engine
        self.cap = cap
        self.state_dir = state_dir or lake.root / STATE_DIR

    def _state(self) -> tuple[dict[str, Any], pa.Table | None]:
        path = self.state_dir / "state.json"
        table = self.state_dir / "windows.parquet"
        if not path.exists() or not table.exists():
            return {}, None
        return json.loads(path.read_text()), pq.read_table(table)

    def _save(self, state: dict[str, Any], windows: pa.Table) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / ".windows.parquet.tmp"
        pq.write_table(windows, tmp)
        tmp.replace(self.state_dir / "windows.parquet")
        write_atomic(self.state_dir / "state.json", json.dumps(state).encode())

    def round(
        self,
        widths: Mapping[str, int],
        windows: Windows = DEFAULT_WINDOWS,
        reward: Reward = DEFAULT_REWARD,
        store_path: str | Path | None = None,
    ) -> RoundAggregates:
        """Flush the hot buffer (when given), then bring the aggregates up to date."""
        if store_path is not None:
            flush(store_path, self.lake)
        with self.lake.locked():
            manifest = self.lake.manifest()
            state, kept = self._state()
            fingerprint = _fingerprint(widths, windows, reward, self.cap)
            fresh = kept is None or state.get("fingerprint") != fingerprint
            seen = 0 if fresh else int(state.get("seq", 0))
            last = manifest.next_seq - 1
            new = [s for s in manifest.segments if s.seq > seen and s.kind == "flush"]
            # a compaction that dropped copies: their hours may hold sums of an older round
            # that counted them (rows are what the SQL makes of each id once now)
            rewritten = [s for s in manifest.segments if s.seq > seen and s.dropped > 0]
            span, visitors, users = None, frozenset[str](), frozenset[str]()
            if new and not fresh:
                span, visitors, users = self._new(new, windows, reward)
            if rewritten and not fresh:
                span = _union(span, self._new(rewritten, windows, reward)[0])
            files = 0
            if fresh or span is not None:
                width = max([0, *widths.values()])
                table, files, span = self._compute(span, widths, windows, reward, width)
                kept = table if fresh or kept is None else _replace(kept, table, span)
                self._save({"seq": last, "fingerprint": fingerprint}, kept)
            elif last != seen and kept is not None:
                self._save({"seq": last, "fingerprint": fingerprint}, kept)
        assert kept is not None
        found = _totals(kept, widths, span, files)
        if fresh:
            found.visitors = found.users = None
        else:
            found.visitors, found.users = visitors, users
        return found

    def _new(
        self, new: list[Any], windows: Windows, reward: Reward
    ) -> tuple[tuple[int, int] | None, frozenset[str], frozenset[str]]:
        """The dirty span of the new segments, and the visitors and users they name."""
        paths = [str(self.lake.root / s.path) for s in new]
        table = self.lake.read(paths, ["type", "ts", "visitor", "user"])
        types = table.column("type").to_numpy(zero_copy_only=False)
        span = dirty_span(types, table.column("ts").to_numpy(), windows, reward)
        visitors = frozenset(str(v) for v in pc.unique(table.column("visitor")).to_pylist())
        named = pc.unique(table.column("user")).to_pylist()
        return span, visitors, frozenset(str(u) for u in named if u)

    def _compute(
        self,
        span: tuple[int, int] | None,
        widths: Mapping[str, int],
        windows: Windows,
        reward: Reward,
        width: int,
    ) -> tuple[pa.Table, int, tuple[int, int] | None]:
        if span is None:  # everything from the first hour on
            hours = [s.hour for s in self.lake.manifest().segments]
            if not hours:
                return _empty(width), 0, None
            span = (min(hours), max(hours) + HOUR_MS)
        lo, hi = span
        first = min(lo - lo % DAY_MS, lo - SKEW_MS)
        files = self.lake.files(first)
        self.lake.check(files)  # a truncated segment: one line naming it
        sql = aggregation_sql(Query(lo, hi, windows, reward, width, self.cap))
        rows = self.engine.run(sql, files, widths_rows(widths))
        table = pa.Table.from_pylist(rows, schema=_schema(width)) if rows else _empty(width)
        return table, len(files), span


def _union(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1])


def _schema(width: int) -> pa.Schema:
    pairs, singles = columns(width)
    fields = [
        ("hour_ms", pa.int64()),
        ("key", pa.string()),
        ("seg", pa.int32()),
        ("variant", pa.string()),
        ("learnable", pa.int32()),
        ("n", pa.int64()),
        ("successes", pa.float64()),
        ("reward", pa.float64()),
        ("m", pa.int64()),
        ("yty", pa.float64()),
        ("clicked", pa.int64()),
        ("converted", pa.int64()),
        ("revenue", pa.float64()),
        ("revenue2", pa.float64()),
    ]
    fields += [(f"xtx_{i}_{j}", pa.float64()) for i, j in pairs]
    fields += [(f"xty_{i}", pa.float64()) for i in singles]
    return pa.schema(fields)


def _empty(width: int) -> pa.Table:
    return _schema(width).empty_table()


def _replace(kept: pa.Table, fresh: pa.Table, span: tuple[int, int] | None) -> pa.Table:
    if span is None:
        return fresh
    hours = kept.column("hour_ms")
    outside = pc.or_(pc.less(hours, span[0]), pc.greater_equal(hours, span[1]))
    return pa.concat_tables([kept.filter(outside), fresh.cast(kept.schema)])


def _totals(
    windows: pa.Table, widths: Mapping[str, int], span: tuple[int, int] | None, files: int
) -> RoundAggregates:
    """Every window summed (per key, variant, learnable) into the learner's ``Aggregates``."""
    sums = [c for c in windows.column_names if c not in ("hour_ms", "key", "seg", "variant")]
    sums.remove("learnable")
    grouped = windows.group_by(["key", "seg", "variant", "learnable"]).aggregate(
        [(c, "sum") for c in sums]
    )
    learnable, everything = Aggregates(dict(widths)), Aggregates(dict(widths))
    rows = learnable_rows = 0
    for row in grouped.to_pylist():
        width = widths.get(row["key"], 0)
        stats = _stats(row, width)
        if row["seg"] == 0:
            rows += stats.n
            learnable_rows += stats.n if row["learnable"] else 0
        key = (row["key"], row["variant"])
        everything.arms[key] = (
            everything.arms[key].merged(stats) if key in everything.arms else stats
        )
        if row["learnable"]:
            learnable.arms[key] = stats
    return RoundAggregates(learnable, everything, rows, learnable_rows, span, files)


def _stats(row: Mapping[str, Any], width: int) -> ArmStats:
    rows, cols = np.triu_indices(width + 1)
    return ArmStats(
        width,
        int(row["n_sum"]),
        float(row["successes_sum"]),
        float(row["reward_sum"]),
        int(row["m_sum"]),
        np.array([float(row[f"xtx_{i}_{j}_sum"]) for i, j in zip(rows, cols, strict=True)]),
        np.array([float(row[f"xty_{i}_sum"]) for i in range(width + 1)]),
        float(row["yty_sum"]),
    )
