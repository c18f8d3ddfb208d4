"""Form edits applied to a draft's config, each checked by the compiler itself.

An edit returns a new config (the draft's is never changed in place) and the compiler's
problems (``compile.site.compile_site``, the same check as ``edgepick compile``); the workspace
saves the edit only when there are none. ``field_errors`` sorts problems by the form field
they concern (by config path), so each is shown next to its field.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from compile.problems import ConfigError, Problem
from compile.site import compile_site

VARIANT_FIELDS = ("id", "content", "path", "segment", "stage", "intent", "theme", "status")
NUMBER_FIELDS = ("weight", "min_engagement")


def problems(config: Mapping[str, Any]) -> list[Problem]:
    """Every problem the compiler finds in ``config`` (none: it compiles), its range messages
    read as people say them ("must be at least 0.0", not "between 0.0 and None")."""
    try:
        compile_site(config)
    except ConfigError as exc:
        return [Problem(p.path, _range(p.message), p.value) for p in exc.problems]
    return []


RANGE = re.compile(r"^must be between (\S+) and (\S+)$")


def _range(message: str) -> str:
    found = RANGE.match(message)
    if found is None:
        return message
    low, high = found.groups()
    if high == "None":
        return f"must be at least {low}"
    if low == "None":
        return f"must be at most {high}"
    return message


def renamed(found: Iterable[Problem], old: str, new: str) -> list[Problem]:
    """Problems found under a placeholder name (``old``, e.g. ``slots.x``) as under ``new``."""
    return [
        Problem(new + p.path[len(old) :], p.message, p.value)
        if p.path == old or p.path.startswith((old + ".", old + "["))
        else p
        for p in found
    ]


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


# the policy keys each kind reads (compile/site.py ``_policy``); the slot form keeps only these
POLICY_KEYS = {
    "fixed": ("seed",),
    "thompson": ("floor", "segments"),
    "linear": ("features", "exploration", "temperature", "gamma", "floor", "cold_start"),
}
POLICY_KINDS = tuple(POLICY_KEYS)
EXPLORATIONS = ("squarecb", "softmax", "igw")
GRANULARITIES = ("component", "element", "page")
PLACEMENTS = ("inline", "async")
POLICY_NUMBERS = ("floor", "temperature", "gamma")


def words(text: str) -> list[str]:
    """A list typed one item per line, or separated by commas or spaces."""
    return [w for w in re.split(r"[\s,]+", text) if w]


def _flag(text: str) -> bool | str:
    """A yes / no select's value as a TOML boolean; anything else as typed (the compiler names
    it: "expected true or false")."""
    found = {"true": True, "false": False}.get(text.strip().lower())
    return text.strip() if found is None else found


def _policy_value(key: str, text: str) -> Any:
    if key == "features":
        return words(text)
    if key in POLICY_NUMBERS:
        return _number(text)
    if key == "cold_start":
        return _flag(text)
    return text.strip()


def set_slot(
    config: Mapping[str, Any],
    slot: str,
    form: Mapping[str, str],
    segments: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The slot's settings (default, paths one per line, selector, placement) and its policy.

    A field the form does not carry keeps its value; a blank one is removed (the compiler's
    default applies). The policy keeps the keys its kind reads (``POLICY_KEYS``: a slot
    switched from linear to fixed loses its features), so the config says what is in effect.
    ``segments`` (thompson: audiences with their own allocation) is None when the form did not
    show them."""
    new = copy.deepcopy(dict(config))
    table = _slot(new, slot)
    if "default" in form:
        table["default"] = form["default"].strip()
    if "paths" in form:
        paths = [p.strip() for p in form["paths"].splitlines() if p.strip()]
        _put(table, "paths", paths or None)
    if "selector" in form:
        _put(table, "selector", form["selector"].strip() or None)
    if "placement" in form:
        placement = form["placement"].strip()
        unchanged = placement == "inline" and "placement" not in table
        _put(table, "placement", None if unchanged or not placement else placement)
    old = dict(table.get("policy", {}))
    kind = form["kind"].strip() if "kind" in form else str(old.get("kind", "fixed"))
    policy: dict[str, Any] = {"kind": kind}
    for key in POLICY_KEYS.get(kind, tuple(k for keys in POLICY_KEYS.values() for k in keys)):
        if key == "segments":
            value: Any = list(segments) if segments is not None else old.get(key)
        elif key in form:
            value = _policy_value(key, form[key]) if form[key].strip() else None
        else:
            value = old.get(key)
        if value is not None and value != []:
            policy[key] = value
    table["policy"] = policy
    return new


def _put(table: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value


def new_slot(config: Mapping[str, Any], name: str, form: Mapping[str, str]) -> dict[str, Any]:
    """Add slot ``name``: granularity, placement, selector, paths, a fixed split (``seed``), a
    linear policy (``features``) or thompson, and its first variant (``variant_id``,
    ``content`` or, for a page slot, ``page_path``, ``status``), which is also its default."""
    new = copy.deepcopy(dict(config))
    granularity = form.get("granularity", "").strip() or "component"
    vid = form.get("variant_id", "").strip()
    variant: dict[str, Any] = {"id": vid}
    if granularity == "page":
        variant["path"] = form.get("page_path", "").strip()
    else:
        variant["content"] = form.get("content", "")
    variant["status"] = form.get("status", "").strip() or "active"
    table: dict[str, Any] = {"granularity": granularity}
    placement = form.get("placement", "").strip()
    if placement and placement != "inline":
        table["placement"] = placement
    if form.get("selector", "").strip():
        table["selector"] = form["selector"].strip()
    paths = [p.strip() for p in form.get("paths", "").splitlines() if p.strip()]
    if paths:
        table["paths"] = paths
    table["default"] = vid
    kind = form.get("kind", "").strip() or "fixed"
    table["policy"] = {"kind": kind}
    if kind == "fixed" and form.get("seed", "").strip():
        table["policy"]["seed"] = form["seed"].strip()
    if kind == "linear" and form.get("features", "").strip():
        table["policy"]["features"] = words(form["features"])
    table["variants"] = [variant]
    new.setdefault("slots", {})[name] = table
    return new


def delete_slot(config: Mapping[str, Any], slot: str) -> dict[str, Any]:
    new = copy.deepcopy(dict(config))
    _slot(new, slot)
    del new["slots"][slot]
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


def condition_text(condition: Any) -> str:
    """A condition as compact JSON, keys sorted (the same condition reads the same)."""
    return json.dumps(condition, sort_keys=True, separators=(", ", ": "), ensure_ascii=False)


def audience_change(before: Mapping[str, Any], after: Mapping[str, Any], name: str) -> str:
    """An audience edit in words, for the audit log: added with its condition, or the
    condition and description that changed, old -> new."""
    old = before.get("audiences", {}).get(name)
    new = after.get("audiences", {}).get(name)
    if not isinstance(new, dict):
        return f"audience {name} removed"
    if not isinstance(old, dict):
        return f"audience {name} added: {condition_text(new.get('condition'))}"
    parts = []
    if old.get("condition") != new.get("condition"):
        parts.append(
            f"condition {condition_text(old.get('condition'))} -> "
            f"{condition_text(new.get('condition'))}"
        )
    if old.get("description", "") != new.get("description", ""):
        parts.append(
            f"description {old.get('description', '')!r} -> {new.get('description', '')!r}"
        )
    return f"audience {name}: {'; '.join(parts) or 'saved unchanged'}"


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
