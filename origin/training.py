"""Training rows: each exposure's feature vector (as the edge used it) with its outcomes.

Outcomes join exposures exactly by decision id (the edge marks each filled slot with it), inside
an attribution window after the exposure: clicks within ``click_window`` (30 min by default),
conversions within ``conversion_window`` (24 h). The reward of a row is configurable:

    r = w_click * [clicks > 0] + w_conversion * [conversions > 0] + w_value * value

with ``w_click = 1`` and the others 0 by default (click-through). Rows the policy did not choose
(rules, holdout, preview, default) are kept but flagged ``learnable = False``: the learner trains
on policy draws only, whose propensities are the policy's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from origin.store import EventStore, Joined

LEARNABLE_REASONS = frozenset({"policy", "fallback"})


@dataclass(frozen=True, slots=True)
class Reward:
    """How outcomes become a reward; see the module docstring."""

    click: float = 1.0
    conversion: float = 0.0
    value: float = 0.0

    def __call__(self, clicks: int, conversions: int, value: float) -> float:
        return self.click * (clicks > 0) + self.conversion * (conversions > 0) + self.value * value

    @classmethod
    def parse(cls, text: str) -> Reward:
        """``"click=1,conversion=5,value=0.01"`` -> a ``Reward``; raises ``ValueError``."""
        weights: dict[str, float] = {"click": 0.0, "conversion": 0.0, "value": 0.0}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, number = part.partition("=")
            if not sep or name.strip() not in weights:
                raise ValueError(f"reward: {part!r} must be click=W, conversion=W or value=W")
            try:
                weights[name.strip()] = float(number)
            except ValueError:
                raise ValueError(f"reward: {number!r} in {part!r} is not a number") from None
        return cls(**weights)


@dataclass(frozen=True, slots=True)
class Windows:
    click_ms: int = 30 * 60 * 1000
    conversion_ms: int = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TrainingRow:
    decision: str
    ts: int
    visitor: str
    slot: str
    variant: str
    propensity: float
    reason: str
    snapshot: str
    features: tuple[float, ...]
    clicks: int
    conversions: int
    value: float
    reward: float
    segment: str = ""  # the Thompson segment (audience) whose allocation chose the variant
    # the logging policy's distribution as the edge logged it (policy draws): arm indices of
    # the snapshot's slot with a positive probability, and those probabilities
    eligible: tuple[int, ...] = ()
    probs: tuple[float, ...] = ()

    @property
    def learnable(self) -> bool:
        return self.reason in LEARNABLE_REASONS


VISITOR_CAP = 20  # learnable rows one visitor contributes per slot and day
DAY_MS = 86_400_000


def rows_from(
    joined: Iterable[Joined], reward: Reward, visitor_cap: int = VISITOR_CAP
) -> Iterator[TrainingRow]:
    """Rows in store order. A visitor's policy draws beyond ``visitor_cap`` per slot and day
    are kept but not learnable (reason ``capped``): one client replaying a page and clicking its
    own decisions moves the learned allocation by at most its capped share."""
    used: dict[tuple[str, str, int], int] = {}
    for j in joined:
        e = j.exposure
        reason = e["reason"]
        if reason in LEARNABLE_REASONS:
            key = (e["visitor"], e["slot"], int(e["ts"]) // DAY_MS)
            used[key] = used.get(key, 0) + 1
            if used[key] > visitor_cap:
                reason = "capped"
        yield TrainingRow(
            decision=e["id"],
            ts=int(e["ts"]),
            visitor=e["visitor"],
            slot=e["slot"],
            variant=e["variant"],
            propensity=float(e["propensity"]),
            reason=reason,
            snapshot=e["snapshot"],
            features=tuple(float(x) for x in e["features"]),
            clicks=j.clicks,
            conversions=j.conversions,
            value=j.value,
            reward=reward(j.clicks, j.conversions, j.value),
            segment=str(e.get("segment") or ""),
            eligible=tuple(int(i) for i in e.get("eligible") or ()),
            probs=tuple(float(p) for p in e.get("probs") or ()),
        )


def training_rows(
    store: EventStore,
    windows: Windows = Windows(),
    reward: Reward = Reward(),
    since_ms: int = 0,
) -> Iterator[TrainingRow]:
    """Every exposure since ``since_ms`` joined with its attributed outcomes."""
    return rows_from(store.joined(windows.click_ms, windows.conversion_ms, since_ms), reward)
