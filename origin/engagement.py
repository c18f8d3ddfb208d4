"""Engagement from a user's history (their page views across sessions), as profile flags.

Sessions are runs of page views with gaps of at most the site's session timeout (as the
cookie counts visits). Over the user's last ``RECENT`` sessions, with ``n_k`` page views in
session ``k = 0..K-1`` (oldest first):

- **velocity trend**: the least-squares slope of ``n_k`` on ``k`` relative to their mean,
  ``b = sum((k - k̄)(n_k - n̄)) / sum((k - k̄)^2) / n̄`` (``numpy.polyfit``, degree 1); the flag
  is ``velocity:rising`` for ``b > TREND``, ``velocity:falling`` for ``b < -TREND``,
  ``velocity:steady`` otherwise (fewer than 3 sessions: no flag);
- **visit frequency**: sessions per week in the ``WINDOW_DAYS`` before the last page view,
  ``f = sessions * 7 / WINDOW_DAYS``; the flag is ``frequency:daily`` (``f >= 4``),
  ``frequency:weekly`` (``f >= 1``), ``frequency:monthly`` (``f >= 0.5``: at least 2
  sessions in the window), else ``frequency:rare``.

The reference time is the user's own last page view, so a profile depends on its events only.
(Trend of a count series by its OLS slope: e.g. Hyndman & Athanasopoulos, *Forecasting:
Principles and Practice*, 3rd ed., section 7.1.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RECENT = 5  # sessions the trend is fitted on
TREND = 0.1  # relative slope (per session) beyond which velocity rises or falls
WINDOW_DAYS = 28
DAY = 86400


@dataclass(frozen=True, slots=True)
class Engagement:
    sessions: int  # sessions in the whole history
    views_per_session: float  # over the recent sessions
    trend: float  # relative OLS slope of page views per session (0 with fewer than 3)
    frequency: float  # sessions per week in the window before the last view

    def flags(self) -> frozenset[str]:
        out = set()
        if self.sessions >= 3:
            if self.trend > TREND:
                out.add("velocity:rising")
            elif self.trend < -TREND:
                out.add("velocity:falling")
            else:
                out.add("velocity:steady")
        if self.sessions:
            f = self.frequency
            bucket = (
                "daily" if f >= 4 else "weekly" if f >= 1 else "monthly" if f >= 0.5 else "rare"
            )
            out.add(f"frequency:{bucket}")
        return frozenset(out)


def session_sizes(times: Sequence[int], timeout: int) -> list[tuple[int, int]]:
    """``(start, page views)`` of each session, oldest first, from view times in seconds."""
    out: list[tuple[int, int]] = []
    last = None
    for t in sorted(times):
        if last is None or t - last > timeout:
            out.append((t, 0))
        out[-1] = (out[-1][0], out[-1][1] + 1)
        last = t
    return out


def engagement(times: Sequence[int], timeout: int) -> Engagement:
    """A user's engagement from their page view times (unix seconds); see the module docstring."""
    sizes = session_sizes(times, timeout)
    if not sizes:
        return Engagement(0, 0.0, 0.0, 0.0)
    recent = np.array([n for _, n in sizes[-RECENT:]], dtype=float)
    mean = float(recent.mean())
    trend = 0.0
    if len(recent) >= 3:
        slope = float(np.polyfit(np.arange(len(recent), dtype=float), recent, 1)[0])
        trend = slope / mean
    end = max(times)
    within = sum(1 for start, _ in sizes if start > end - WINDOW_DAYS * DAY)
    return Engagement(len(sizes), mean, trend, within * 7 / WINDOW_DAYS)
