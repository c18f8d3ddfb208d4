"""Form edits applied to a draft's config, each checked by the compiler itself.

An edit returns a new config (the draft's is never changed in place) and the compiler's
problems (``compile.site.compile_site``, the same check as ``edgepick compile``); the workspace
saves the edit only when there are none. ``field_errors`` sorts problems by the form field
they concern (by config path), so each is shown next to its field.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from compile.problems import ConfigError, Problem
from compile.site import compile_site

VARIANT_FIELDS = ("id", "content", "path", "segment", "stage", "intent", "theme", "status")
NUMBER_FIELDS = ("weight", "min_engagement")
POLICY_FIELDS = ("kind", "seed", "floor")


def problems(config: Mapping[str, Any]) -> list[Problem]:
    """Every problem the compiler finds in ``config`` (none: it compiles)."""
    try:
        compile_site(config)
    except ConfigError as exc:
        return list(exc.problems)
    return []


def _number(text: str) -> float | int | str:
    """A form's number as TOML would read it; anything else is kept as text, so the compiler
    names it with its path ("expected a number (got 'abc')")."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _slot(config: dict[str, Any], slot: str) -> dict[str, Any]:
    table = config.setdefault("slots", {}).get(slot)
    if not isinstance(table, dict):
        raise KeyError(f"no slot {slot!r}")
    return table


def variant_path(config: Mapping[str, Any], slot: str, index: int | None) -> str:
    count = len(config["slots"][slot].get("variants", []))
    return f"slots.{slot}.variants[{count if index is None else index}]"


def set_variant(
    config: Mapping[str, Any], slot: str, index: int | None, form: Mapping[str, str]
) -> dict[str, Any]:
    """Add (``index`` None) or replace a variant of ``slot`` from the form's fields; blank
    optional fields are left out, unknown ones ignored, ``scores`` kept from the old variant."""
    new = copy.deepcopy(dict(config))
    table = _slot(new, slot)
    variants = table.setdefault("variants", [])
    old = variants[index] if index is not None else {}
    entry: dict[str, Any] = {k: v for k, v in old.items() if k not in VARIANT_FIELDS}
    for name in VARIANT_FIELDS:
        text = form.get(name, "")
        if name == "content" and table.get("granularity") == "page":
            continue
        if name == "path" and table.get("granularity") != "page":
            continue
        if text.strip() or name in ("id", "content"):
            entry[name] = text if name == "content" else text.strip()
    for name in NUMBER_FIELDS:
        entry.pop(name, None)
        if form.get(name, "").strip():
            entry[name] = _number(form[name])
    if index is None:
        variants.append(entry)
    else:
        variants[index] = entry
    return new


def delete_variant(config: Mapping[str, Any], slot: str, index: int) -> dict[str, Any]:
    new = copy.deepcopy(dict(config))
    del _slot(new, slot)["variants"][index]
    return new


def set_slot(config: Mapping[str, Any], slot: str, form: Mapping[str, str]) -> dict[str, Any]:
    """The slot's default, paths (one per line) and policy kind, seed and floor."""
    new = copy.deepcopy(dict(config))
    table = _slot(new, slot)
    table["default"] = form.get("default", "").strip()
    paths = [p.strip() for p in form.get("paths", "").splitlines() if p.strip()]
    if paths:
        table["paths"] = paths
    else:
        table.pop("paths", None)
    policy = dict(table.get("policy", {}))
    policy["kind"] = form.get("kind", "fixed").strip()
    for name in ("seed", "floor"):
        text = form.get(name, "").strip()
        policy.pop(name, None)
        if text:
            policy[name] = text if name == "seed" else _number(text)
    table["policy"] = policy
    return new


def set_audience(
    config: Mapping[str, Any], name: str, condition: Any, description: str
) -> dict[str, Any]:
    new = copy.deepcopy(dict(config))
    entry: dict[str, Any] = {"condition": condition}
    if description.strip():
        entry["description"] = description.strip()
    new.setdefault("audiences", {})[name.strip()] = entry
    return new


def delete_audience(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    new = copy.deepcopy(dict(config))
    del new.get("audiences", {})[name]
    return new


def set_holdout(config: Mapping[str, Any], text: str) -> dict[str, Any]:
    new = copy.deepcopy(dict(config))
    new.setdefault("site", {})["holdout"] = _number(text)
    return new


def field_errors(
    found: Iterable[Problem], prefix: str, fields: Iterable[str]
) -> tuple[dict[str, list[Problem]], list[Problem]]:
    """Problems by the form field under ``prefix`` they concern, and the rest."""
    names = sorted(fields, key=len, reverse=True)
    by_field: dict[str, list[Problem]] = {}
    rest: list[Problem] = []
    for problem in found:
        hit = next(
            (
                n
                for n in names
                if problem.path == f"{prefix}.{n}"
                or problem.path.startswith((f"{prefix}.{n}.", f"{prefix}.{n}["))
            ),
            None,
        )
        if hit is None and problem.path == prefix:
            hit = "_"
        if hit is None:
            rest.append(problem)
        else:
            by_field.setdefault(hit, []).append(problem)
    return by_field, rest


def add_rule(config: Mapping[str, Any], slot: str, form: Mapping[str, str]) -> dict[str, Any]:
    """Append a rule: ``audience``, ``action`` (force: ``variant``; restrict / exclude:
    ``variants``, comma-separated)."""
    new = copy.deepcopy(dict(config))
    table = _slot(new, slot)
    kind = form.get("action", "force").strip()
    rule: dict[str, Any] = {"audience": form.get("audience", "").strip(), "action": kind}
    chosen = [v.strip() for v in form.get("variants", "").split(",") if v.strip()]
    if kind == "force":
        rule["variant"] = chosen[0] if chosen else ""
    else:
        rule["variants"] = chosen
    table.setdefault("rules", []).append(rule)
    return new


def delete_rule(config: Mapping[str, Any], slot: str, index: int) -> dict[str, Any]:
    new = copy.deepcopy(dict(config))
    del _slot(new, slot)["rules"][index]
    return new


def rule_path(config: Mapping[str, Any], slot: str) -> str:
    return f"slots.{slot}.rules[{len(config['slots'][slot].get('rules', []))}]"
