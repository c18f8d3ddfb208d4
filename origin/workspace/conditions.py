"""The audience condition builder: rows of (attribute, operator, value) <-> GrowthBook JSON.

``build`` writes the condition GrowthBook's targeting syntax gives those rows ("all": one
object, ``$and`` where an attribute repeats; "any": ``$or``); ``rows`` reads a condition back
into rows when it has that shape (otherwise the page edits its JSON). The compiler checks the
result like any authored condition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ATTRIBUTES = (
    "device",
    "country",
    "referrer",
    "utmSource",
    "utmCampaign",
    "path",
    "category",
    "visits",
    "pageViews",
    "visitFrequency",
    "pageViewsPerVisit",
    "newVisitor",
    "stage",
    "topCategory",
    "loggedIn",
    "flags",
    "hour",
    "weekday",
    "daysSinceFirstVisit",
    "hoursSinceLastVisit",
)
OPERATORS = {
    "$eq": "is",
    "$ne": "is not",
    "$in": "is one of",
    "$nin": "is none of",
    "$gt": ">",
    "$gte": ">=",
    "$lt": "<",
    "$lte": "<=",
    "$regex": "matches regex",
    "$exists": "exists",
}
LISTS = ("$in", "$nin")


@dataclass(frozen=True, slots=True)
class Row:
    attribute: str
    operator: str
    value: str


def _scalar(text: str) -> Any:
    """``3`` -> 3, ``true`` -> True, ``"x"`` -> "x", anything else -> the text itself."""
    text = text.strip()
    try:
        found = json.loads(text)
    except ValueError:
        return text
    return found if isinstance(found, bool | int | float | str) else text


def _operand(row: Row) -> Any:
    if row.operator in LISTS:
        return [_scalar(part) for part in row.value.split(",") if part.strip()]
    if row.operator == "$regex":
        return row.value
    return _scalar(row.value)


def build(match: str, rows: Sequence[Row]) -> dict[str, Any]:
    """The GrowthBook condition for ``rows`` (blank attributes skipped)."""
    parts = [{r.attribute.strip(): {r.operator: _operand(r)}} for r in rows if r.attribute.strip()]
    if match == "any" and len(parts) > 1:
        return {"$or": parts}
    merged: dict[str, Any] = {}
    for part in parts:
        ((name, test),) = part.items()
        if name in merged:
            return {"$and": parts}
        merged[name] = test
    return merged


def _text(value: Any) -> str:
    """The value as the builder's text box shows it (a string that reads as another type is
    quoted, so it reads back as that string)."""
    if isinstance(value, str) and _scalar(value) == value and "," not in value:
        return value
    return json.dumps(value)


def _row(name: str, test: Any) -> Row | None:
    if name.startswith("$"):
        return None
    if isinstance(test, Mapping):
        if len(test) != 1:
            return None
        ((op, operand),) = test.items()
        if op not in OPERATORS:
            return None
        if op in LISTS:
            if not isinstance(operand, list):
                return None
            return Row(name, op, ", ".join(_text(v) for v in operand))
        return Row(name, op, _text(operand))
    return Row(name, "$eq", _text(test))


def rows(condition: Mapping[str, Any]) -> tuple[str, list[Row]] | None:
    """(match, rows) for a condition the builder can show; None for any other shape."""
    match, parts = "all", [condition]
    if list(condition) in (["$or"], ["$and"]) and isinstance(
        condition.get("$or", condition.get("$and")), list
    ):
        match = "any" if "$or" in condition else "all"
        parts = list(condition.get("$or", condition.get("$and")))
    found: list[Row] = []
    for part in parts:
        if not isinstance(part, Mapping):
            return None
        for name, test in part.items():
            row = _row(name, test)
            if row is None:
                return None
            found.append(row)
    return match, found


def from_form(form: Mapping[str, Any], getlist: Any) -> tuple[str, list[Row]]:
    """The rows a builder form posted (``attribute``, ``operator``, ``value`` repeated)."""
    names, ops, values = getlist("attribute"), getlist("operator"), getlist("value")
    found = [Row(a, o, v) for a, o, v in zip(names, ops, values, strict=False)]
    return str(form.get("match", "all")), found
