"""Visitor state (stored in the cookie), request context (derived per request) and features.

Category affinity is an exponentially decayed count of page views per category:

    a_c(t) = a_c(t0) * 2^(-(t - t0) / h) + [this view is in c]

with half-life ``h`` (a view counts 1, a view ``h`` seconds ago counts 1/2). Affinities are kept
as of ``last_seen`` and decayed on read.

Engagement from the cookie: visit frequency, visits per week over the visitor's life but at
least one week, ``f = 7 * visits / max(days since first visit, 7)``, and engagement velocity,
page views per visit, ``v = page_views / max(visits, 1)`` (the trend over recent sessions needs
their history: the origin's profiles carry it as a flag, ``origin.engagement``).

Linear policies read a feature vector whose entries are named in the snapshot
(``"affinity:shoes"``, ``"device:mobile"``) and parsed once into extractors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from core import generated
from core.model import Route, Signals


class VisitorState(NamedTuple):
    """What the cookie stores about a visitor (a named tuple: rebuilt on every request)."""

    visitor_id: str
    visits: int = 0
    first_seen: int = 0
    last_seen: int = 0
    session_start: int = 0
    stage: str = ""
    affinity: tuple[tuple[str, float], ...] = ()  # as of last_seen, highest first
    flags: frozenset[str] = frozenset()
    user_id: str = ""
    page_views: int = 0
    # this session's decisions, reused on repeat views: (slot, variant, decision id, propensity)
    decisions: tuple[tuple[str, str, str, float], ...] = ()
    decisions_epoch: int = 0  # the snapshot epoch they were made in

    @property
    def is_new(self) -> bool:
        """No history yet: the first page view of the first visit, or a context-only visitor."""
        return self.visits <= 1 and self.page_views <= 1


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a request says about itself; derived per request, never stored."""

    path: str = "/"
    device: str = "desktop"  # desktop, mobile, tablet, bot
    country: str = ""
    referrer: str = "direct"  # direct, search, social, email, internal, other
    utm_source: str = ""
    utm_campaign: str = ""
    hour: int = 12  # hour of the day, 0..23 (UTC at the edge: request.cf carries no offset here)
    weekday: int = 0  # 0 = Monday
    consent: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)


def route(routes: tuple[Route, ...], path: str) -> str:
    """The value of the longest route prefix that matches ``path`` ("" when none does)."""
    best, best_len = "", -1
    for r in routes:
        if path.startswith(r.prefix) and len(r.prefix) > best_len:
            best, best_len = r.value, len(r.prefix)
    return best


def decayed_affinity(state: VisitorState, now: int, half_life: int) -> dict[str, float]:
    """Affinities decayed from ``last_seen`` to ``now``; see the module docstring."""
    if not state.affinity:
        return {}
    factor = 2.0 ** (-max(now - state.last_seen, 0) / half_life) if half_life > 0 else 1.0
    return {cat: score * factor for cat, score in state.affinity}


MAX_FLAGS = 16  # flags beyond this are not added (the cookie has a byte budget)


def record_page_view(
    state: VisitorState, now: int, path: str, signals: Signals, flags: frozenset[str] = frozenset()
) -> VisitorState:
    """The state after a page view of ``path`` at ``now``.

    A new session starts after ``session_timeout`` seconds of inactivity (counted in ``visits``);
    the funnel stage only moves forward within the configured stage order.
    """
    new_session = state.visits == 0 or now - state.last_seen > signals.session_timeout
    affinity = decayed_affinity(state, now, signals.half_life)
    category = route(signals.categories, path)
    if category:
        affinity[category] = affinity.get(category, 0.0) + 1.0
    ranked = sorted(affinity.items(), key=lambda kv: (-kv[1], kv[0]))[: signals.max_categories]
    stage = state.stage
    reached = route(signals.funnel, path)
    if reached and _stage_rank(signals, reached) > _stage_rank(signals, stage):
        stage = reached
    return state._replace(
        visits=state.visits + 1 if new_session else state.visits,
        first_seen=state.first_seen or now,
        last_seen=now,
        session_start=now if new_session else state.session_start,
        stage=stage,
        affinity=tuple((c, s) for c, s in ranked if s >= 0.01),
        flags=state.flags | flags if len(state.flags) < MAX_FLAGS else state.flags,
        page_views=state.page_views + 1,
    )


def _stage_rank(signals: Signals, stage: str) -> int:
    return signals.stages.index(stage) if stage in signals.stages else -1


AttributeFn = Callable[[VisitorState, RequestContext, int, Signals, dict[str, float]], Any]


WEEK = 7 * 86400


def visit_frequency(state: VisitorState, now: int) -> float:
    """Visits per week: ``7 * visits / max(days since first visit, 7)`` (module docstring)."""
    if not state.first_seen or state.visits <= 0:
        return 0.0
    return state.visits * WEEK / max(now - state.first_seen, WEEK)


def views_per_visit(state: VisitorState) -> float:
    """Engagement velocity: page views per visit, ``page_views / max(visits, 1)``."""
    return state.page_views / max(state.visits, 1)


def _top_category(affinity: dict[str, float]) -> str:
    return max(affinity.items(), key=lambda kv: kv[1])[0] if affinity else ""


# attribute name -> how it is computed (state, context, now, signals, decayed affinity)
ATTRIBUTES: dict[str, AttributeFn] = {
    "id": lambda s, c, now, sig, a: s.visitor_id,
    "visits": lambda s, c, now, sig, a: s.visits,
    "pageViews": lambda s, c, now, sig, a: s.page_views,
    "newVisitor": lambda s, c, now, sig, a: s.is_new,
    "daysSinceFirstVisit": lambda s, c, now, sig, a: (
        (now - s.first_seen) / 86400 if s.first_seen else 0
    ),
    "hoursSinceLastVisit": lambda s, c, now, sig, a: (
        (now - s.last_seen) / 3600 if s.last_seen else 0
    ),
    "stage": lambda s, c, now, sig, a: s.stage,
    "topCategory": lambda s, c, now, sig, a: _top_category(a),
    "affinity": lambda s, c, now, sig, a: a,
    "flags": lambda s, c, now, sig, a: sorted(s.flags),
    "loggedIn": lambda s, c, now, sig, a: bool(s.user_id),
    "visitFrequency": lambda s, c, now, sig, a: visit_frequency(s, now),
    "pageViewsPerVisit": lambda s, c, now, sig, a: views_per_visit(s),
    "path": lambda s, c, now, sig, a: c.path,
    "category": lambda s, c, now, sig, a: route(sig.categories, c.path),
    "device": lambda s, c, now, sig, a: c.device,
    "country": lambda s, c, now, sig, a: c.country,
    "referrer": lambda s, c, now, sig, a: c.referrer,
    "utmSource": lambda s, c, now, sig, a: c.utm_source,
    "utmCampaign": lambda s, c, now, sig, a: c.utm_campaign,
    "hour": lambda s, c, now, sig, a: c.hour,
    "weekday": lambda s, c, now, sig, a: c.weekday,
    "consent": lambda s, c, now, sig, a: c.consent,
}
ALL_ATTRIBUTES: tuple[str, ...] = tuple(ATTRIBUTES)


def attributes(
    state: VisitorState,
    context: RequestContext,
    now: int,
    signals: Signals,
    affinity: dict[str, float] | None = None,
    keys: tuple[str, ...] = ALL_ATTRIBUTES,
) -> dict[str, Any]:
    """The attribute document targeting conditions are evaluated against.

    ``keys`` limits it to the attributes the site's conditions read (the engine knows which);
    the request's ``extra`` attributes are always merged in.
    """
    if affinity is None:
        affinity = decayed_affinity(state, now, signals.half_life)
    return attribute_builder(keys)(state, context, now, signals, affinity)


# attributes that are plain fields, read inline by the generated builder (and by the fused
# audience functions of core.predicates.compile_fused_hits)
FIELDS = {
    "id": "s.visitor_id",
    "visits": "s.visits",
    "pageViews": "s.page_views",
    "stage": "s.stage",
    "path": "c.path",
    "device": "c.device",
    "country": "c.country",
    "referrer": "c.referrer",
    "utmSource": "c.utm_source",
    "utmCampaign": "c.utm_campaign",
    "hour": "c.hour",
    "weekday": "c.weekday",
    "consent": "c.consent",
}
AttributeBuilder = Callable[
    [VisitorState, RequestContext, int, Signals, dict[str, float]], dict[str, Any]
]


_BUILDERS: dict[tuple[str, ...], AttributeBuilder] = {}


def attribute_builder(keys: tuple[str, ...]) -> AttributeBuilder:
    """A function building the attribute document for ``keys``, generated once per engine.

    Its body is one dict display (``{'device': c.device, 'visits': s.visits, ...}``), computed
    attributes are calls, and the request's ``extra`` attributes are merged last. Only the
    fixed attribute names of ``ATTRIBUTES`` become source (unknown keys are refused).
    """
    known = _BUILDERS.get(keys)
    if known is not None:
        return known
    namespace: dict[str, Any] = {}
    entries = []
    for key in keys:
        if key not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {key!r}")
        if key in FIELDS:
            entries.append(f"{key!r}: {FIELDS[key]}")
        else:
            namespace[f"_f{len(namespace)}"] = ATTRIBUTES[key]
            entries.append(f"{key!r}: _f{len(namespace) - 1}(s, c, now, sig, aff)")
    source = (
        "def build(s, c, now, sig, aff):\n"
        f"    attrs = {{{', '.join(entries)}}}\n"
        "    if c.extra:\n"
        "        attrs.update(c.extra)\n"
        "    return attrs\n"
    )
    generated.run(source, "attributes", namespace)
    build: AttributeBuilder = namespace["build"]
    if len(_BUILDERS) < 64:  # one per distinct key set; a handful per process in practice
        _BUILDERS[keys] = build
    return build


# ---------------------------------------------------------------- features of linear policies

Featurizer = Callable[[VisitorState, RequestContext, Mapping[str, float], int], tuple[float, ...]]

_DAYPARTS = {
    "night": range(0, 6),
    "morning": range(6, 12),
    "afternoon": range(12, 18),
    "evening": range(18, 24),
}

# name (before the colon) -> (needs an argument, its value as a Python expression over the
# visitor state ``s``, the request context ``c``, the decayed affinity ``a``, ``now``, and
# ``total`` (a's sum); ``{k}`` is the argument, bound as a constant)
_FEATURE_SOURCES: dict[str, tuple[bool, str]] = {
    "bias": (False, "1.0"),
    "visits": (False, "_log1p(s.visits)"),
    "new_visitor": (False, "(1.0 if s.is_new else 0.0)"),
    # exp(-days since the previous view / 7): 1 for a visitor seen just now, 0 for never
    "recency": (False, "(_exp(-(now - s.last_seen) / 604800) if s.last_seen else 0.0)"),
    "weekend": (False, "(1.0 if c.weekday >= 5 else 0.0)"),
    # log1p of visits per week and of page views per visit (engagement, module docstring)
    "frequency": (False, "_log1p(_frequency(s, now))"),
    "velocity": (False, "_log1p(_velocity(s))"),
    # the category's share of the visitor's total affinity (0 when there is none)
    "affinity": (True, "(a.get({k}, 0.0) / total if total > 0 else 0.0)"),
    "stage": (True, "(1.0 if s.stage == {k} else 0.0)"),
    "flag": (True, "(1.0 if {k} in s.flags else 0.0)"),
    "device": (True, "(1.0 if c.device == {k} else 0.0)"),
    "country": (True, "(1.0 if c.country == {k} else 0.0)"),
    "referrer": (True, "(1.0 if c.referrer == {k} else 0.0)"),
    "utm": (True, "(1.0 if c.utm_source == {k} else 0.0)"),
    "daypart": (True, "(1.0 if c.hour in {k} else 0.0)"),
}
FEATURES: frozenset[str] = frozenset(_FEATURE_SOURCES)
_FEATURIZERS: dict[tuple[str, ...], Featurizer] = {}


def featurizer(names: tuple[str, ...]) -> Featurizer:
    """The function computing a linear policy's feature vector, generated once per name list.

    Its body is one tuple display, an inline expression per feature (``_FEATURE_SOURCES``);
    feature arguments are bound as constants, never written into the source. The affinity
    total is ``math.fsum``: the same bits on every Python (``sum`` of floats is compensated
    from 3.12 on, plain before). Names must pass ``feature_problem`` (the compiler checks).
    """
    known = _FEATURIZERS.get(names)
    if known is not None:
        return known
    namespace: dict[str, Any] = {
        "_log1p": math.log1p,
        "_exp": math.exp,
        "_fsum": math.fsum,
        "_frequency": visit_frequency,
        "_velocity": views_per_visit,
    }
    values = []
    for n, name in enumerate(names):
        problem = feature_problem(name)
        if problem is not None:
            raise ValueError(problem)
        kind, _, arg = name.partition(":")
        namespace[f"_k{n}"] = _DAYPARTS[arg] if kind == "daypart" else arg
        values.append(_FEATURE_SOURCES[kind][1].format(k=f"_k{n}"))
    reads_total = any(n.startswith("affinity:") for n in names)
    total = "    total = _fsum(a.values())\n" if reads_total else ""
    body = "".join(f"{v}, " for v in values)
    source = f"def featurize(s, c, a, now):\n{total}    return ({body})\n"
    generated.run(source, "features", namespace)
    featurize: Featurizer = namespace["featurize"]
    if len(_FEATURIZERS) < 64:  # one per distinct feature list
        _FEATURIZERS[names] = featurize
    return featurize


def feature_problem(name: str) -> str | None:
    """Why a feature name is invalid, or ``None`` when it is fine."""
    kind, _, arg = name.partition(":")
    spec = _FEATURE_SOURCES.get(kind)
    if spec is None:
        return f"unknown feature {kind!r} (known: {', '.join(sorted(FEATURES))})"
    if spec[0] and not arg:
        return f"feature {kind!r} needs an argument, as in '{kind}:VALUE'"
    if not spec[0] and arg:
        return f"feature {kind!r} takes no argument"
    if kind == "daypart" and arg not in _DAYPARTS:
        return f"daypart must be one of {sorted(_DAYPARTS)}"
    return None
