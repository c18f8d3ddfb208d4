"""Authored site config (TOML) + optional learned model (JSON) -> a validated ``Site``.

Strict: every problem is collected with its config path and the bad value, then raised once as
``ConfigError``. The model file, written by the origin's learner, supplies per-variant numbers by
name (Thompson allocations, linear arm weights, cold-start allocations); see docs/config.md.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compile.problems import ConfigError, Problem, Reader, unrepresentable
from core.conditions import problems as condition_problems
from core.features import feature_problem
from core.model import (
    Audience,
    CookieSpec,
    Exploration,
    FixedPolicy,
    Granularity,
    Lifecycle,
    LinearArm,
    LinearPolicy,
    Placement,
    Policy,
    Route,
    Rule,
    RuleAction,
    Signals,
    Site,
    Slot,
    Taxonomy,
    ThompsonPolicy,
    Variant,
)

SLOT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # it becomes an HTTP header name (x-edgepick-NAME)
VARIANT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")  # header values, cookies, event ids

TOP_KEYS = {"site", "cookie", "signals", "saved_groups", "audiences", "slots"}
SLOT_KEYS = {
    "granularity",
    "placement",
    "default",
    "selector",
    "policy",
    "rules",
    "variants",
    "description",
    "paths",
}
VARIANT_KEYS = {
    "id",
    "content",
    "path",
    "segment",
    "stage",
    "intent",
    "theme",
    "status",
    "weight",
    "min_engagement",
    "scores",
    "description",
}
POLICY_KEYS = {
    "kind",
    "seed",
    "floor",
    "exploration",
    "temperature",
    "gamma",
    "features",
    "cold_start",
    "segments",
}


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), "file not found")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem(str(path), f"not valid TOML: {exc}")]) from None


def load_model(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), "file not found")]) from None
    except json.JSONDecodeError as exc:
        raise ConfigError([Problem(str(path), f"not valid JSON: {exc}")]) from None
    if not isinstance(data, dict):
        raise ConfigError(
            [Problem(str(path), "a model must be a JSON object", type(data).__name__)]
        )
    return data


def compile_site(
    config: Mapping[str, Any], model: Mapping[str, Any] | None = None, source: str = ""
) -> Site:
    """Validate ``config`` (and ``model``) and build the ``Site``; raises ``ConfigError``."""
    r = Reader()
    # values no boundary can carry (NaN, infinities, huge integers, TOML dates, runaway nesting)
    # stop the compile here, all reported at once: every later step may assume finite numbers
    r.problems += unrepresentable(config, "")
    if model is not None:
        r.problems += unrepresentable(model, "model")
    r.raise_if_any(source)
    r.known(config, TOP_KEYS, "")
    site = r.table(config, "site", "", required=True)
    r.known(site, {"name", "epoch", "holdout", "origin"}, "site")
    groups_table = r.table(config, "saved_groups", "")
    groups = _saved_groups(r, groups_table)
    signals = _signals(r, r.table(config, "signals", ""))
    audiences = _audiences(r, r.table(config, "audiences", ""), groups)
    known_audiences = {a.name for a in audiences}
    slots_table = r.table(config, "slots", "", required=True)
    if not slots_table and "slots" in config:
        r.add("slots", "a site needs at least one slot")
    model_slots = (model or {}).get("slots", {})
    if not isinstance(model_slots, dict):
        r.add("model.slots", "expected an object keyed by slot name", model_slots)
        model_slots = {}
    for name in model_slots:
        if name not in slots_table:
            r.add(f"model.slots.{name}", "no such slot in the config")
    slots = []
    for name, table in slots_table.items():
        if not isinstance(table, dict):
            r.add(f"slots.{name}", "expected a table", table)
            continue
        if not SLOT_NAME.match(name):
            r.add(f"slots.{name}", "a slot name may use only letters, digits, '-' and '_'", name)
        slot = _slot(r, name, table, known_audiences, model_slots.get(name, {}))
        if slot is not None:
            slots.append(slot)
    cookie = r.table(config, "cookie", "")
    r.known(cookie, {"name", "max_bytes", "max_age_days"}, "cookie")
    result = Site(
        name=r.string(site, "name", "site"),
        epoch=r.integer(site, "epoch", "site", 0),
        holdout=r.number(site, "holdout", "site", 0.0, 0.0, 0.5),
        origin=r.string(site, "origin", "site", ""),
        cookie=CookieSpec(
            name=_cookie_name(r, cookie),
            max_bytes=r.integer(cookie, "max_bytes", "cookie", 1024, low=128, high=4096),
            max_age=r.integer(cookie, "max_age_days", "cookie", 180, low=1, high=3650) * 86400,
        ),
        signals=signals,
        saved_groups=groups,
        audiences=tuple(audiences),
        slots=tuple(slots),
    )
    r.raise_if_any(source)
    return result


def _routes(r: Reader, table: dict[str, Any], path: str) -> tuple[Route, ...]:
    routes = []
    for prefix, value in table.items():
        if not prefix.startswith("/"):
            r.add(f"{path}.{prefix}", "a path prefix must start with '/'", prefix)
        if not isinstance(value, str) or not value:
            r.add(f"{path}.{prefix}", "expected a non-empty name", value)
            continue
        routes.append(Route(prefix, value))
    return tuple(routes)


def _saved_groups(r: Reader, table: dict[str, Any]) -> dict[str, Any]:
    """``NAME = [values]`` (legacy), or GrowthBook's typed groups: ``{type = "list", values =
    [...], attributeKey = "..."}`` and ``{type = "condition", condition = {...}}``."""
    groups: dict[str, Any] = {}
    for name, entry in table.items():
        here = f"saved_groups.{name}"
        if isinstance(entry, list):
            groups[name] = tuple(entry)
        elif isinstance(entry, dict) and entry.get("type") == "list":
            r.known(entry, {"type", "values", "attributeKey"}, here)
            if not isinstance(entry.get("values"), list):
                r.add(f"{here}.values", "expected a list", entry.get("values"))
            if not isinstance(entry.get("attributeKey", ""), str):
                r.add(f"{here}.attributeKey", "expected an attribute path", entry["attributeKey"])
            groups[name] = dict(entry)
        elif isinstance(entry, dict) and entry.get("type") == "condition":
            r.known(entry, {"type", "condition"}, here)
            groups[name] = dict(entry)
        else:
            r.add(here, 'expected a list, or a table with type = "list" or "condition"', entry)
    for name, entry in groups.items():  # conditions may name groups defined after them
        if isinstance(entry, dict) and entry["type"] == "condition":
            condition = entry.get("condition")
            for where, message, value in condition_problems(
                condition, groups, f"saved_groups.{name}.condition"
            ):
                r.add(where, message, value)
    for name in _cyclic_groups(groups):
        r.add(f"saved_groups.{name}", "refers back to itself through $savedGroup (a cycle)")
    return groups


def _named_groups(value: Any) -> set[str]:
    """The saved groups a condition names with ``$savedGroup``, at any depth."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$savedGroup")
            if isinstance(ref, dict) and isinstance(ref.get("id"), str):
                found.add(ref["id"])
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item
    return found


def _cyclic_groups(groups: dict[str, Any]) -> list[str]:
    """Condition groups from which a chain of ``$savedGroup`` references leads back to them."""
    edges = {
        name: _named_groups(entry.get("condition"))
        for name, entry in groups.items()
        if isinstance(entry, dict) and entry.get("type") == "condition"
    }
    cyclic = []
    for start in sorted(edges):
        seen, todo = set(), list(edges[start])
        while todo:
            node = todo.pop()
            if node == start:
                cyclic.append(start)
                break
            if node not in seen:
                seen.add(node)
                todo += list(edges.get(node, ()))
    return cyclic


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")  # RFC 6265 / RFC 9110 token


def _cookie_name(r: Reader, table: dict[str, Any]) -> str:
    """The cookie's name goes into ``Set-Cookie`` as is: an RFC 6265 token, nothing else."""
    name = r.string(table, "name", "cookie", "ep")
    if name and not _TOKEN.fullmatch(name):
        r.add(
            "cookie.name", "must be 1-64 letters, digits or !#$%&'*+-.^_`|~ (a cookie token)", name
        )
        return "ep"
    return name


def _signals(r: Reader, table: dict[str, Any]) -> Signals:
    r.known(
        table,
        {
            "half_life_days",
            "session_timeout_minutes",
            "max_categories",
            "stages",
            "categories",
            "funnel",
        },
        "signals",
    )
    stages = r.strings(table, "stages", "signals", [])
    funnel = _routes(r, r.table(table, "funnel", "signals"), "signals.funnel")
    for route in funnel:
        if route.value not in stages:
            r.add(
                f"signals.funnel.{route.prefix}",
                f"stage is not in signals.stages {stages}",
                route.value,
            )
    return Signals(
        categories=_routes(r, r.table(table, "categories", "signals"), "signals.categories"),
        funnel=funnel,
        stages=tuple(stages),
        half_life=round(r.number(table, "half_life_days", "signals", 14, 0.01, 3650) * 86400),
        session_timeout=round(
            r.number(table, "session_timeout_minutes", "signals", 30, 1, 1440) * 60
        ),
        max_categories=r.integer(table, "max_categories", "signals", 8, low=1),
    )


def _audiences(
    r: Reader, table: dict[str, Any], groups: dict[str, tuple[Any, ...]]
) -> list[Audience]:
    out = []
    for name, spec in table.items():
        path = f"audiences.{name}"
        if not isinstance(spec, dict):
            r.add(path, "expected a table", spec)
            continue
        r.known(spec, {"condition", "description"}, path)
        condition = r.table(spec, "condition", path, required=True)
        for where, message, value in condition_problems(condition, groups, f"{path}.condition"):
            r.add(where, message, value)
        out.append(Audience(name, condition, r.string(spec, "description", path, "")))
    return out


def _slot(
    r: Reader, name: str, table: dict[str, Any], audiences: set[str], learned: Any
) -> Slot | None:
    path = f"slots.{name}"
    r.known(table, SLOT_KEYS, path)
    granularity = r.choice(table, "granularity", path, Granularity, Granularity.COMPONENT)
    variants, weights, scores = [], [], []
    seen: set[str] = set()
    for vpath, vt in r.tables(table, "variants", path):
        r.known(vt, VARIANT_KEYS, vpath)
        vid = r.string(vt, "id", vpath)
        if vid and not VARIANT_ID.match(vid):
            r.add(f"{vpath}.id", "a variant id may use only letters, digits and - _ . :", vid)
        if vid in seen:
            r.add(f"{vpath}.id", "duplicate variant id", vid)
        seen.add(vid)
        content = _content(r, vt, vpath, granularity)
        variants.append(
            Variant(
                id=vid,
                content=content,
                tags=Taxonomy(
                    *(r.string(vt, k, vpath, "") for k in ("segment", "stage", "intent", "theme"))
                ),
                lifecycle=r.choice(vt, "status", vpath, Lifecycle, Lifecycle.ACTIVE),
                min_engagement=r.number(vt, "min_engagement", vpath, 0.0, 0.0, 1.0),
            )
        )
        weights.append(r.number(vt, "weight", vpath, 1.0, 0.0, None))
        scores.append((vpath, r.table(vt, "scores", vpath)))
    if not variants:
        r.add(f"{path}.variants", "a slot needs at least one variant")
        return None
    default = r.string(table, "default", path, variants[0].id)
    if default not in seen:
        r.add(f"{path}.default", "not one of the slot's variant ids", default)
        default = variants[0].id
    if not any(v.lifecycle is Lifecycle.ACTIVE for v in variants):
        r.add(f"{path}.variants", "no variant is active: the slot would always serve its default")
    rules = _rules(r, table, path, audiences, seen)
    learned = learned if isinstance(learned, dict) else {}
    policy = _policy(
        r, r.table(table, "policy", path), path, variants, weights, scores, learned, audiences
    )
    return Slot(
        name=name,
        granularity=granularity,
        default=default,
        variants=tuple(variants),
        policy=policy,
        rules=tuple(rules),
        placement=r.choice(table, "placement", path, Placement, Placement.INLINE),
        selector=_selector(r, table, path, name),
        paths=tuple(_paths(r, table, path, granularity)),
    )


# what HTMLRewriter's selectors (lol-html) support besides type, class, id, attribute
# selectors and the descendant and child combinators
_PSEUDO = re.compile(r":(?:first-child|first-of-type|nth-child|nth-of-type|not)(?=\(|$|[\s>.#\[:])")
_ATTRIBUTE = re.compile(r"\[(?:[^\]\"']|\"[^\"]*\"|'[^']*')*\]")


def _selector(r: Reader, table: dict[str, Any], path: str, name: str) -> str:
    """The slot's selector; refused when HTMLRewriter would refuse it at the edge (there every
    page would fail to be filled): sibling combinators and pseudo-classes it lacks."""
    selector = r.string(table, "selector", path, f'[data-edgepick-slot="{name}"]')
    outside = _ATTRIBUTE.sub("[]", selector)  # attribute values may hold anything
    unsupported = re.sub(r"\([^()]*\)", "", _PSEUDO.sub("", outside))
    if ":" in unsupported or "+" in unsupported or "~" in unsupported or "," in unsupported:
        r.add(
            f"{path}.selector",
            "HTMLRewriter supports type, class, id and attribute selectors, descendant and child "
            "combinators, :first-child, :first-of-type, :nth-child(), :nth-of-type() and :not()",
            selector,
        )
    return selector


def _paths(r: Reader, table: dict[str, Any], path: str, granularity: Granularity) -> list[str]:
    paths = r.strings(table, "paths", path, [])
    for i, prefix in enumerate(paths):
        if not prefix.startswith("/"):
            r.add(f"{path}.paths[{i}]", "a path prefix must start with '/'", prefix)
    if granularity is Granularity.PAGE and not paths:
        r.add(f"{path}.paths", "a page slot must say which request paths it serves")
    return paths


def _content(r: Reader, vt: dict[str, Any], vpath: str, granularity: Granularity) -> str:
    if granularity is Granularity.PAGE:
        page = r.string(vt, "path", vpath)
        if page and not page.startswith("/"):
            r.add(f"{vpath}.path", "a page variant's origin path must start with '/'", page)
        if "content" in vt:
            r.add(f"{vpath}.content", "page variants name an origin 'path', not 'content'")
        return page
    if "path" in vt:
        r.add(
            f"{vpath}.path",
            f"only page slots take a 'path' ({granularity.value} slots take 'content')",
        )
    return r.string(vt, "content", vpath, empty=True)


def _rules(
    r: Reader, table: dict[str, Any], path: str, audiences: set[str], ids: set[str]
) -> list[Rule]:
    rules = []
    for rpath, rt in r.tables(table, "rules", path):
        r.known(rt, {"audience", "action", "variants", "variant"}, rpath)
        audience = r.string(rt, "audience", rpath)
        if audience and audience not in audiences:
            r.add(f"{rpath}.audience", "no such audience", audience)
        action = r.choice(rt, "action", rpath, RuleAction, RuleAction.RESTRICT)
        if action is RuleAction.FORCE:
            chosen = [r.string(rt, "variant", rpath)]
        else:
            chosen = r.strings(rt, "variants", rpath)
            if not chosen:
                r.add(f"{rpath}.variants", "list at least one variant")
        for i, vid in enumerate(chosen):
            if vid and vid not in ids:
                where = (
                    f"{rpath}.variant" if action is RuleAction.FORCE else f"{rpath}.variants[{i}]"
                )
                r.add(where, "no such variant in this slot", vid)
        rules.append(Rule(audience, action, tuple(chosen)))
    return rules


def _by_name(
    r: Reader, values: Any, variants: list[Variant], path: str, fallback: list[float]
) -> tuple[float, ...]:
    """Per-variant numbers given by variant id (in a model), in slot order; absent ones -> 0."""
    if values is None:
        return tuple(fallback)
    if not isinstance(values, dict):
        r.add(path, "expected an object keyed by variant id", values)
        return tuple(fallback)
    ids = [v.id for v in variants]
    for key, value in values.items():
        if key not in ids:
            r.add(f"{path}.{key}", "no such variant")
        elif not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            r.add(f"{path}.{key}", "expected a number >= 0", value)
    return tuple(float(values[i]) if isinstance(values.get(i), int | float) else 0.0 for i in ids)


def _policy(
    r: Reader,
    table: dict[str, Any],
    path: str,
    variants: list[Variant],
    weights: list[float],
    scores: list[tuple[str, dict[str, Any]]],
    learned: dict[str, Any],
    audiences: set[str],
) -> Policy:
    ppath = f"{path}.policy"
    r.known(table, POLICY_KEYS, ppath)
    kind = r.string(table, "kind", ppath, "fixed")
    floor = r.number(table, "floor", ppath, 0.05, 0.0, 1.0)
    allocation = _by_name(r, learned.get("weights"), variants, f"model.{path}.weights", weights)
    if kind == "fixed":
        total = sum(weights) or 1.0
        return FixedPolicy(tuple(w / total for w in weights), r.string(table, "seed", ppath, ""))
    if kind == "thompson":
        segments = r.strings(table, "segments", ppath, [])
        learned_segments = learned.get("segments", {})
        if not isinstance(learned_segments, dict):
            r.add(
                f"model.{path}.segments", "expected an object keyed by audience", learned_segments
            )
            learned_segments = {}
        for i, name in enumerate(segments):
            if name not in audiences:
                r.add(f"{ppath}.segments[{i}]", "no such audience", name)
        for name in learned_segments:
            if name not in segments:
                r.add(f"model.{path}.segments.{name}", "not one of the policy's segments")
        weights_by_segment = tuple(
            _by_name(
                r,
                learned_segments.get(name),
                variants,
                f"model.{path}.segments.{name}",
                list(allocation),
            )
            for name in segments
        )
        return ThompsonPolicy(allocation, floor, tuple(segments), weights_by_segment)
    if kind != "linear":
        r.add(f"{ppath}.kind", "must be one of: fixed, thompson, linear", kind)
        return FixedPolicy(tuple(weights))
    features = r.strings(table, "features", ppath)
    for i, feature in enumerate(features):
        problem = feature_problem(feature)
        if problem:
            r.add(f"{ppath}.features[{i}]", problem, feature)
    arms = _arms(r, features, variants, scores, learned.get("arms"), f"model.{path}.arms")
    cold = r.boolean(table, "cold_start", ppath, True)
    cold_weights = _by_name(
        r, learned.get("cold_start"), variants, f"model.{path}.cold_start", list(allocation)
    )
    exploration = r.choice(table, "exploration", ppath, Exploration, Exploration.SQUARECB)
    learned_gammas = learned.get("gammas")  # squarecb: the learner's gamma per arm
    gammas = (
        _by_name(r, learned_gammas, variants, f"model.{path}.gammas", [])
        if exploration is Exploration.SQUARECB and learned_gammas is not None
        else ()
    )
    return LinearPolicy(
        features=tuple(features),
        arms=arms,
        exploration=exploration,
        temperature=r.number(table, "temperature", ppath, 0.1, 1e-6, None),
        gamma=r.number(table, "gamma", ppath, 50.0, 0.0, None),
        floor=floor,
        cold_start=cold_weights if cold else (),
        gammas=gammas,
    )


def _arms(
    r: Reader,
    features: list[str],
    variants: list[Variant],
    scores: list[tuple[str, dict[str, Any]]],
    learned: Any,
    lpath: str,
) -> tuple[LinearArm, ...]:
    """Arm models: learned ones where the model has them, else the variant's authored scores."""
    learned = learned if isinstance(learned, dict) else {}
    arms = []
    for variant, (vpath, authored) in zip(variants, scores, strict=True):
        source, where = (
            (learned[variant.id], f"{lpath}.{variant.id}")
            if variant.id in learned
            else (
                {
                    "bias": authored.get("bias", 0.0),
                    "weights": {k: v for k, v in authored.items() if k != "bias"},
                },
                f"{vpath}.scores",
            )
        )
        if not isinstance(source, dict):
            r.add(where, "expected an object with bias and weights", source)
            arms.append(LinearArm(0.0, (0.0,) * len(features)))
            continue
        bias = source.get("bias", 0.0)
        named = source.get("weights", {})
        if not isinstance(bias, int | float) or isinstance(bias, bool):
            r.add(f"{where}.bias", "expected a number", bias)
            bias = 0.0
        if not isinstance(named, dict):
            r.add(f"{where}.weights", "expected an object keyed by feature", named)
            named = {}
        for feature, value in named.items():
            if feature not in features:
                r.add(f"{where}.{feature}", "not one of the policy's features", value)
            elif not isinstance(value, int | float) or isinstance(value, bool):
                r.add(f"{where}.{feature}", "expected a number", value)
        arms.append(
            LinearArm(
                float(bias),
                tuple(
                    float(named[f]) if isinstance(named.get(f), int | float) else 0.0
                    for f in features
                ),
            )
        )
    return tuple(arms)
