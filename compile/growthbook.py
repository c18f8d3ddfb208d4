"""Import a GrowthBook SDK payload (features, saved groups) as an edgepick site config.

``edgepick import growthbook FEATURES.json -o site.toml``: each feature becomes a slot whose
variants are its values, so every visitor gets the value GrowthBook's JavaScript SDK would give
(``tests/compile/test_growthbook_import.py`` checks that on a generated population):

* a force rule (``{"condition": C, "force": V}``) becomes an audience ``C`` and a ``force``
  rule, in the feature's rule order (edgepick: the first matching force wins, as in GrowthBook);
* an experiment rule (``{"variations": [...], "weights": [...], "seed": S, "hashVersion": 2}``)
  becomes the slot's fixed split, one variant per variation in order, drawn with the same hash,
  seed and bucket ranges. Visitors its condition leaves out fall through to the later rules and
  the default: they get audiences ``not C and C_j`` / ``not C`` that force those values;
* the default value is the slot's default, and the site's holdout is 0 (GrowthBook has none).

What a slot cannot express is skipped with its reason, the rest imported: partial coverage and
rollouts (edgepick splits everyone a rule reaches), hash attributes other than ``id``, hash
version 1, namespaces, filters and ranges, prerequisites, more than one experiment per feature,
weights that do not sum to 1 (GrowthBook leaves the rest unassigned), and ``null`` anywhere TOML
cannot write it. Saved groups come over as they are (legacy lists and typed groups).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

_UNSUPPORTED_RULE_KEYS = {
    "namespace": "namespaces",
    "filters": "filters",
    "range": "hash ranges",
    "ranges": "hash ranges",
    "parentConditions": "prerequisites",
    "fallbackAttribute": "a fallback hash attribute",
    "minBucketVersion": "bucket versions",
}
_NAME = re.compile(r"[^A-Za-z0-9_-]")


class Skipped(ValueError):
    """A feature the import cannot express; the message says why."""


def import_payload(payload: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(site config, {feature key: why it was skipped}); slot names are the feature keys with
    other characters than letters, digits, ``-`` and ``_`` replaced by ``_``."""
    features = payload.get("features")
    if not isinstance(features, Mapping):
        raise ValueError('a GrowthBook payload has a "features" object')
    groups = payload.get("savedGroups") or {}
    if not isinstance(groups, Mapping):
        raise ValueError('"savedGroups" must be an object')
    config: dict[str, Any] = {
        "site": {"name": "Imported from GrowthBook", "epoch": 0, "holdout": 0.0},
        "saved_groups": dict(groups),
        "audiences": {},
        "slots": {},
    }
    skipped: dict[str, str] = {}
    for key, feature in features.items():
        name = _NAME.sub("_", str(key))
        try:
            if name in config["slots"]:
                raise Skipped(f"its slot name {name!r} is taken by another feature")
            slot, audiences = _feature(str(key), name, feature)
            _check_writable(slot, audiences)
        except Skipped as why:
            skipped[str(key)] = str(why)
            continue
        config["slots"][name] = slot
        config["audiences"].update(audiences)
    if not config["saved_groups"]:
        del config["saved_groups"]
    return config, skipped


def _feature(key: str, name: str, feature: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    if not isinstance(feature, Mapping):
        raise Skipped("a feature must be an object")
    rules = feature.get("rules") or []
    if not isinstance(rules, list):
        raise Skipped('"rules" must be a list')
    experiments = [i for i, r in enumerate(rules) if isinstance(r, Mapping) and "variations" in r]
    if len(experiments) > 1:
        raise Skipped("more than one experiment rule (a slot has one split)")
    variants: list[dict[str, Any]] = []
    weights: list[float] = []
    seed = f"{key}:import"
    if experiments:
        rule = rules[experiments[0]]
        values, weights, seed = _experiment(key, rule)
        for i, value in enumerate(values):
            variants.append({"id": f"var-{i}", "content": _content(value), "weight": weights[i]})
    by_value: dict[str, str] = {}

    def variant_for(value: Any, role: str) -> str:
        text = _content(value)
        if text not in by_value:
            by_value[text] = f"{role}-{len(by_value)}"
            variants.append({"id": by_value[text], "content": text, "weight": 0.0})
        return by_value[text]

    default = variant_for(feature.get("defaultValue"), "value")
    audiences: dict[str, dict[str, Any]] = {}
    slot_rules: list[dict[str, Any]] = []
    gate: Any = None  # the experiment's condition, once passed: later rules need "not gate"
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            raise Skipped(f"rule {i} is not an object")
        for field, what in _UNSUPPORTED_RULE_KEYS.items():
            if field in rule:
                raise Skipped(f"rule {i} uses {what}")
        condition = rule.get("condition") or {}
        if not isinstance(condition, Mapping):
            raise Skipped(f"rule {i}: a condition must be an object")
        if i in experiments:
            gate = dict(condition)
            continue
        if "force" not in rule:
            raise Skipped(f"rule {i} neither forces a value nor runs an experiment")
        if rule.get("coverage") is not None and rule["coverage"] != 1:
            raise Skipped(f"rule {i} is a partial rollout (coverage {rule['coverage']})")
        if gate is not None:
            condition = {"$and": [{"$nor": [gate]}, condition]} if condition else _outside(gate)
        audience = f"gb_{name}_{i}"
        audiences[audience] = {"condition": dict(condition)}
        slot_rules.append(
            {
                "audience": audience,
                "action": "force",
                "variant": variant_for(rule["force"], "value"),
            }
        )
    if gate is not None and gate:  # outside the experiment's condition: the default
        audience = f"gb_{name}_outside"
        audiences[audience] = {"condition": _outside(gate)}
        slot_rules.append({"audience": audience, "action": "force", "variant": default})
    if not experiments:  # no split: everyone the rules leave gets the default
        for variant in variants:
            variant["weight"] = 1.0 if variant["id"] == default else 0.0
    slot: dict[str, Any] = {
        "granularity": "element",
        "default": default,
        "policy": {"kind": "fixed", "seed": seed},
        "variants": variants,
    }
    if slot_rules:
        slot["rules"] = slot_rules
    return slot, audiences


def _outside(condition: Mapping[str, Any]) -> dict[str, Any]:
    return {"$nor": [dict(condition)]}


def _experiment(key: str, rule: Mapping[str, Any]) -> tuple[list[Any], list[float], str]:
    values = rule.get("variations")
    if not isinstance(values, list) or len(values) < 2:
        raise Skipped("an experiment needs at least two variations")
    if rule.get("coverage") is not None and rule["coverage"] != 1:
        raise Skipped(f"the experiment covers {rule['coverage']} of visitors, not all")
    if rule.get("hashAttribute", "id") != "id":
        raise Skipped(f"the experiment hashes {rule['hashAttribute']!r}, not the visitor id")
    if rule.get("hashVersion", 1) != 2:
        raise Skipped("the experiment uses hash version 1 (edgepick splits with version 2)")
    weights = rule.get("weights")
    if weights is None:
        weights = [1 / len(values)] * len(values)  # GrowthBook's getEqualWeights
    if (
        not isinstance(weights, list)
        or len(weights) != len(values)
        or not all(isinstance(w, int | float) and math.isfinite(w) and w >= 0 for w in weights)
    ):
        raise Skipped("weights must be one finite number >= 0 per variation")
    if abs(math.fsum(weights) - 1.0) > 1e-9:
        raise Skipped(f"weights sum to {math.fsum(weights)}, not 1 (GrowthBook leaves a gap)")
    seed = rule.get("seed") or rule.get("key") or key
    if not isinstance(seed, str):
        raise Skipped("the experiment's seed must be a string")
    return values, [float(w) for w in weights], seed


def _content(value: Any) -> str:
    """A variant's content: a string value as is, anything else as its JSON text."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _check_writable(slot: Any, audiences: Any) -> None:
    if _has_null(audiences):
        raise Skipped("a condition holds null, which TOML cannot write")


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, Mapping):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def value_of(content: str, original: Any) -> Any:
    """The feature value a variant's content stands for (strings as is, else JSON)."""
    return content if isinstance(original, str) else json.loads(content)


# ---------------------------------------------------------------- TOML


def to_toml(config: Mapping[str, Any]) -> str:
    """The config as TOML (tables for the structure, inline tables for conditions)."""
    out: list[str] = ["# Imported from a GrowthBook payload by `edgepick import growthbook`."]
    out += ["", "[site]", *_pairs(config["site"])]
    if config.get("saved_groups"):
        out += ["", "[saved_groups]", *_pairs(config["saved_groups"])]
    for name, audience in config["audiences"].items():
        out += ["", f"[audiences.{_key(name)}]", *_pairs(audience)]
    for name, slot in config["slots"].items():
        out += ["", f"[slots.{_key(name)}]"]
        out += _pairs({k: v for k, v in slot.items() if k not in ("variants", "rules")})
        for rule in slot.get("rules", []):
            out += ["", f"[[slots.{_key(name)}.rules]]", *_pairs(rule)]
        for variant in slot["variants"]:
            out += ["", f"[[slots.{_key(name)}.variants]]", *_pairs(variant)]
    return "\n".join(out) + "\n"


def _pairs(table: Mapping[str, Any]) -> list[str]:
    return [f"{_key(k)} = {_value(v)}" for k, v in table.items()]


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are TOML basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return (
            "{ " + ", ".join(f"{json.dumps(str(k))} = {_value(v)}" for k, v in value.items()) + " }"
        )
    raise Skipped(f"TOML cannot write {value!r}")
