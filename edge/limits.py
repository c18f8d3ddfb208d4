"""Per-key budgets, per isolate: beacon events per visitor, new cookies per client address.

Keys are visitor ids (the beacon: ``edge.handler``) or client addresses (new cookies:
``edge.page.budget_new_visitor``). Each visitor (by the id in their signed cookie) may have
``per_window`` beacon events accepted per ``window_ms``; the rest of a beacon is dropped and
counted (health: ``beacon_limited``). A page sends a handful (shown slots, a click, its
vitals), so the default of 30 a minute never touches a person. The table holds at most
``max_visitors`` windows and forgets expired ones first, so memory stays bounded however many
cookies a client mints. Per isolate, like every edge counter: Cloudflare's rate limiting is the
place for volumetric abuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Budget:
    per_window: int = 30
    window_ms: int = 60_000
    max_visitors: int = 50_000
    windows: dict[str, tuple[int, int]] = field(default_factory=dict)  # visitor -> (start, used)
    limited: int = 0  # events dropped since the isolate started

    def take(self, visitor: str, wanted: int, now_ms: int) -> int:
        """How many of ``wanted`` events this visitor may still send now (and count them)."""
        start, used = self.windows.get(visitor, (now_ms, 0))
        if now_ms - start >= self.window_ms:
            start, used = now_ms, 0
        granted = max(0, min(wanted, self.per_window - used))
        if visitor not in self.windows and len(self.windows) >= self.max_visitors:
            self._forget(now_ms)
        self.windows[visitor] = (start, used + granted)
        self.limited += wanted - granted
        return granted

    def _forget(self, now_ms: int) -> None:
        expired = [v for v, (s, _) in self.windows.items() if now_ms - s >= self.window_ms]
        for visitor in expired or list(self.windows)[: len(self.windows) // 2]:
            del self.windows[visitor]
