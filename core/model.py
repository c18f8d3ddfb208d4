"""The snapshot model: what the compiler produces and the edge decides with.

Frozen dataclasses, enums parsed once. Per-variant numbers (weights, arm models) are indexed by
the variant's position in ``Slot.variants``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MAGIC = "edgepick-snapshot"
SCHEMA_VERSION = 1


class Granularity(StrEnum):
    PAGE = "page"  # the variant names an origin path that serves the whole URL
    COMPONENT = "component"  # a page section (hero, recommendations)
    ELEMENT = "element"  # a headline, a CTA, an image


class Lifecycle(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    RETIRED = "retired"


class Placement(StrEnum):
    INLINE = "inline"  # filled in the HTML before it reaches the browser
    ASYNC = "async"  # below the fold: left as a placeholder, filled after render


class RuleAction(StrEnum):
    FORCE = "force"  # the audience always gets this one variant
    RESTRICT = "restrict"  # the audience chooses among these variants only
    EXCLUDE = "exclude"  # the audience never gets these variants


class Exploration(StrEnum):
    SOFTMAX = "softmax"
    IGW = "igw"  # inverse-gap weighting (SquareCB) with the authored gamma
    # inverse-gap weighting with a learned gamma per arm that grows with the arm's data and is
    # in units of the reward's spread: the exploration decays as evidence grows (core.policies)
    SQUARECB = "squarecb"


@dataclass(frozen=True, slots=True)
class Taxonomy:
    segment: str = ""
    stage: str = ""
    intent: str = ""
    theme: str = ""


@dataclass(frozen=True, slots=True)
class Variant:
    id: str
    content: str  # HTML for components and elements; an origin path for page slots
    tags: Taxonomy = Taxonomy()
    lifecycle: Lifecycle = Lifecycle.ACTIVE
    min_engagement: float = 0.0  # retirement threshold the origin's learner checks


@dataclass(frozen=True, slots=True)
class Rule:
    audience: str
    action: RuleAction
    variants: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FixedPolicy:
    """A fixed weighted split, bucketed exactly as a GrowthBook experiment with ``seed``."""

    weights: tuple[float, ...]
    seed: str = ""


@dataclass(frozen=True, slots=True)
class ThompsonPolicy:
    """Allocation weights P(best) computed by the origin from Beta posteriors, plus a floor.

    ``segments`` name audiences with allocations of their own (``segment_weights``, in the same
    order): a visitor in the first matching one is allocated by its weights, others by
    ``weights``; the origin learns one posterior per (slot, variant, segment).
    """

    weights: tuple[float, ...]
    floor: float = 0.05
    segments: tuple[str, ...] = ()
    segment_weights: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class LinearArm:
    bias: float
    weights: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class LinearPolicy:
    """Per-arm linear scores over named features, explored by softmax or inverse-gap weighting."""

    features: tuple[str, ...]
    arms: tuple[LinearArm, ...]
    exploration: Exploration = Exploration.SOFTMAX
    temperature: float = 0.1
    gamma: float = 50.0
    floor: float = 0.02
    cold_start: tuple[float, ...] = ()  # population allocation for visitors with no history
    # squarecb: learned gamma per arm, gamma_a = c sqrt(n_a) / sigma (empty: ``gamma`` for all)
    gammas: tuple[float, ...] = ()


Policy = FixedPolicy | ThompsonPolicy | LinearPolicy


@dataclass(frozen=True, slots=True)
class Slot:
    name: str
    granularity: Granularity
    default: str
    variants: tuple[Variant, ...]
    policy: Policy
    rules: tuple[Rule, ...] = ()
    placement: Placement = Placement.INLINE
    selector: str = ""
    paths: tuple[str, ...] = ()  # request path prefixes the slot applies to (empty: every path)


@dataclass(frozen=True, slots=True)
class Audience:
    name: str
    condition: dict[str, Any]
    description: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    """A URL path prefix mapped to a value (a content category or a funnel stage)."""

    prefix: str
    value: str


@dataclass(frozen=True, slots=True)
class Signals:
    """How page views become stored features."""

    categories: tuple[Route, ...] = ()
    funnel: tuple[Route, ...] = ()
    stages: tuple[str, ...] = ()
    half_life: int = 14 * 86400  # seconds for a category affinity to halve
    session_timeout: int = 30 * 60
    max_categories: int = 8


@dataclass(frozen=True, slots=True)
class CookieSpec:
    name: str = "ep"
    max_bytes: int = 1024
    max_age: int = 180 * 86400


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    slots: tuple[Slot, ...]
    audiences: tuple[Audience, ...] = ()
    # a bare list of values (legacy), or a typed group as GrowthBook writes them:
    # {"type": "list", "values": [...], "attributeKey": ...} / {"type": "condition", ...}
    saved_groups: dict[str, tuple[Any, ...] | dict[str, Any]] = field(default_factory=dict)
    signals: Signals = Signals()
    cookie: CookieSpec = CookieSpec()
    epoch: int = 0
    holdout: float = 0.0
    origin: str = ""


@dataclass(frozen=True, slots=True)
class Header:
    id: str
    parent: str
    created: int
    author: str
    message: str
    schema: int = SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class Snapshot:
    header: Header
    site: Site
