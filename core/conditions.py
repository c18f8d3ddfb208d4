"""GrowthBook targeting conditions (MongoDB-style operators), compiled once into predicates.

``compile_condition`` turns a condition document into a plain Python callable over an attribute
mapping: paths are split once, regexes compiled once, ``$in`` lists turned into sets, version
strings padded once. The request path then only calls closures. Semantics follow GrowthBook's
SDK spec (``evalCondition``): an unknown operator or an invalid regex never matches, numbers
compared with strings are compared as numbers (JavaScript coercion, a missing value counting as
0), and plain values are compared by JSON equality (``1 != true``).

``problems`` reports what an author got wrong (unknown operators, invalid regexes, operands of
the wrong type) so the compiler can refuse a config that would silently never match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core import jsregex, regex_safety
from core import jsvalue as js

Attributes = Mapping[str, Any]
Predicate = Callable[[Attributes], bool]
ValueTest = Callable[[Any], bool]
SavedGroups = Mapping[str, Any]  # a bare list of values, or a typed group (list/condition)

_LOGICAL = ("$or", "$nor", "$and", "$not")


def evaluate(
    condition: Mapping[str, Any], attributes: Attributes, saved_groups: SavedGroups | None = None
) -> bool:
    """Compile and evaluate in one call (tests, tools). The request path keeps the predicate."""
    return compile_condition(condition, saved_groups)(attributes)


def compile_condition(
    condition: Mapping[str, Any],
    saved_groups: SavedGroups | None = None,
    visited: frozenset[str] = frozenset(),
) -> Predicate:
    """A predicate over attributes, equivalent to GrowthBook's ``evalCondition``.

    ``visited``: the condition groups being expanded (``$savedGroup``), carried through every
    logical operator, so a group that refers back to itself matches nobody instead of
    recursing without end (the compiler refuses such groups too)."""
    groups: SavedGroups = saved_groups or {}
    tests = tuple(_compile_entry(key, value, groups, visited) for key, value in condition.items())
    if not tests:
        return _always
    if len(tests) == 1:
        return tests[0]
    return _all_of(tests)


def _all_of(tests: tuple[Predicate, ...]) -> Predicate:
    def conjunction(attrs: Any) -> bool:
        for test in tests:  # noqa: SIM110 - a plain loop beats all(<genexpr>) on the request path
            if not test(attrs):
                return False
        return True

    return conjunction


def _any_of(tests: tuple[Predicate, ...]) -> Predicate:
    def disjunction(attrs: Any) -> bool:
        for test in tests:  # noqa: SIM110 - a plain loop beats any(<genexpr>) on the request path
            if test(attrs):
                return True
        return False

    return disjunction


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


def _compile_entry(
    key: str, value: Any, groups: SavedGroups, visited: frozenset[str] = frozenset()
) -> Predicate:
    if key in _LOGICAL:
        return _compile_logical(key, value, groups, visited)
    if key == "$savedGroup":
        return _saved_group(value, groups, visited)
    test = compile_value(value, groups)
    if "." in key:
        getter = path_getter(key)
        return lambda attrs: test(getter(attrs))

    def entry(attrs: Any) -> bool:  # the common case, one lookup in a dict
        if type(attrs) is dict:
            return test(attrs.get(key))
        return test(js.get_property(attrs, key) if js.has_property(attrs, key) else None)

    return entry


def _compile_logical(
    key: str, value: Any, groups: SavedGroups, visited: frozenset[str]
) -> Predicate:
    if key == "$not":
        inner = compile_condition(value, groups, visited) if isinstance(value, Mapping) else _never
        return lambda attrs: not inner(attrs)
    if not isinstance(value, list):
        return _never
    parts = tuple(
        compile_condition(c, groups, visited) if isinstance(c, Mapping) else _never for c in value
    )
    if key == "$and":
        return _all_of(parts)
    if not parts:  # an empty $or passes, so an empty $nor fails
        return _always if key == "$or" else _never
    disjunction = _any_of(parts)
    if key == "$or":
        return disjunction
    return lambda attrs: not disjunction(attrs)


def path_getter(path: str) -> Callable[[Any], Any]:
    """GrowthBook's ``getPath``: dot-separated keys into objects, and into arrays by index or
    ``length`` (``"flags.0"``, ``"tags.length"``); anything missing is ``None`` (JS ``null``)."""
    keys = tuple(path.split("."))

    def get(attrs: Any) -> Any:
        current = attrs
        for key in keys:
            if type(current) is dict:
                if key not in current:
                    return None
                current = current[key]
            elif js.has_property(current, key):
                current = js.get_property(current, key)
            else:
                return None
        return current

    return get


def attribute_names(condition: Any) -> set[str]:
    """The top-level attribute names a condition reads (``"a.b"`` reads ``"a"``)."""
    names: set[str] = set()
    if not isinstance(condition, Mapping):
        return names
    for key, value in condition.items():
        if key in ("$or", "$nor", "$and"):
            for part in value if isinstance(value, list) else ():
                names |= attribute_names(part)
        elif key == "$not":
            names |= attribute_names(value)
        elif key == "$savedGroup":
            attribute = value.get("attributeKey") if isinstance(value, Mapping) else None
            if isinstance(attribute, str):
                names.add(attribute.split(".")[0])
        else:
            names.add(str(key).split(".")[0])
    return names


def is_operator_object(value: Any) -> bool:
    """GrowthBook's ``isOperatorObject``: a non-empty mapping whose keys all start with ``$``."""
    return isinstance(value, Mapping) and bool(value) and all(str(k).startswith("$") for k in value)


def compile_value(
    condition_value: Any, groups: SavedGroups | None = None, fold: bool = False
) -> ValueTest:
    """A test on one attribute value, equivalent to GrowthBook's ``evalConditionValue``
    (``fold``: its case-insensitive form, which ``$alli`` uses)."""
    expected = condition_value
    if isinstance(expected, str):  # value + "" === condition
        if fold:
            lowered = expected.lower()
            return lambda value: js.to_string(value).lower() == lowered
        return lambda value: (
            value == expected if type(value) is str else js.to_string(value) == expected
        )
    if isinstance(expected, bool):  # value !== null && !!value === condition
        return lambda value: value is not None and js.truthy(value) is expected
    if isinstance(expected, int | float):  # value * 1 === condition
        number = float(expected)
        return lambda value: js.to_number(value) == number
    if expected is None:
        return lambda value: value is None
    if is_operator_object(expected):
        ops = [_compile_operator(op, operand, groups or {}) for op, operand in expected.items()]
        if len(ops) == 1:
            return ops[0]
        return lambda value: all(op(value) for op in ops)
    text = js.stringify(expected)  # arrays and plain objects: JSON.stringify equality
    return lambda value: js.stringify(value) == text


# ---------------------------------------------------------------- values


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON documents as JavaScript's JSON.stringify writes them (key order counts)."""
    return js.stringify(a) == js.stringify(b)


def type_name(value: Any) -> str:
    """The JSON type name GrowthBook's ``$type`` compares against (a missing value is null)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return "unknown"


_BUILD_OR_V = re.compile(r"(^v|\+.*$)")
_VERSION_SPLIT = re.compile(r"[-.]")
_DIGITS = re.compile(r"^[0-9]+$")


def padded_version(value: Any) -> str:
    """A version string that compares correctly as a plain string (GrowthBook's scheme).

    ``v1.2.3+build`` -> ``"    1-    2-    3-~"``: numeric parts left-padded to 5, a release
    without pre-release tag gets ``~`` (sorts after any tag), build metadata is dropped.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = js.number_string(value)
    if not value or not isinstance(value, str):
        value = "0"
    parts = _VERSION_SPLIT.split(_BUILD_OR_V.sub("", value))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(p.rjust(5, " ") if _DIGITS.match(p) else p for p in parts)


def _version_test(op: str, expected: Any) -> ValueTest:
    target = js.utf16(padded_version(expected))
    compare: Callable[[bytes, bytes], bool] = {
        "$veq": lambda a, b: a == b,
        "$vne": lambda a, b: a != b,
        "$vlt": lambda a, b: a < b,
        "$vlte": lambda a, b: a <= b,
        "$vgt": lambda a, b: a > b,
        "$vgte": lambda a, b: a >= b,
    }[op]
    return lambda actual: compare(js.utf16(padded_version(actual)), target)


def _member_key(item: Any, fold: bool) -> Any:
    """A hashable key equal for values JavaScript's ``includes`` finds equal (SameValueZero);
    None for arrays and objects, which are never equal to a value parsed apart."""
    if isinstance(item, bool):
        return ("b", item)
    if isinstance(item, int | float):
        return ("n", float(item))
    if isinstance(item, str):
        return ("s", item.lower() if fold else item)
    if item is None:
        return ("z",)
    return None


def _membership(items: Sequence[Any], fold: bool = False) -> ValueTest:
    """GrowthBook's ``isIn``: the value is in the list, or an array shares an element with it
    (``includes``: strict equality, so ``"1"`` is not in ``[1]``; ``fold`` lower-cases strings)."""
    keys = frozenset(k for k in (_member_key(item, fold) for item in items) if k is not None)
    if not fold and all(type(item) is str for item in items):
        strings = frozenset(items)

        def of_strings(actual: Any) -> bool:  # the common case: a list of strings
            if type(actual) is str:
                return actual in strings
            if isinstance(actual, list):
                return any(type(v) is str and v in strings for v in actual)
            return False

        return of_strings

    def test(actual: Any) -> bool:
        if isinstance(actual, list):
            return any(_member_key(v, fold) in keys for v in actual)
        return _member_key(actual, fold) in keys

    return test


def _regex(pattern: Any, flags: int) -> re.Pattern[str] | None:
    if not isinstance(pattern, str):
        return None
    try:
        return jsregex.compile_js(pattern, bool(flags & re.IGNORECASE))
    except (re.error, jsregex.Untranslatable, RecursionError, OverflowError):
        return None


def _regex_problem(pattern: Any, ignore_case: bool = False) -> str | None:
    """Why a ``$regex`` operand is refused: not JavaScript, not valid, or unsafe."""
    if not isinstance(pattern, str):
        return "expected a regular expression (a string)"
    try:
        translated = jsregex.translate(pattern)
        re.compile(translated)
    except jsregex.Untranslatable as exc:
        return f"not a JavaScript regular expression: {exc}"
    except (re.error, RecursionError, OverflowError) as exc:
        return f"not a valid regular expression: {exc}"
    unsafe = regex_safety.problem(translated, re.IGNORECASE if ignore_case else 0)
    return None if unsafe is None else f"refused, a visitor could make it backtrack: {unsafe}"


def _regex_test(pattern: Any, flags: int, negate: bool) -> ValueTest:
    """``$regex`` and friends: ``RegExp.test`` on the value's string form (JS ``String(v)``).
    A pattern that is not JavaScript, invalid, or that can backtrack catastrophically
    (``core.regex_safety``; the compiler refuses all three) never matches, and a value whose
    string form is longer than ``regex_safety.MAX_INPUT`` characters is tested by neither
    operator, so a visitor's long URL cannot make the edge spin."""
    regex = _regex(pattern, flags)
    if regex is None or regex_safety.problem(regex.pattern, flags) is not None:
        return _never
    search = regex.search
    limit = regex_safety.MAX_INPUT

    def test(actual: Any) -> bool:
        text = jsregex.code_units(actual if type(actual) is str else js.to_string(actual))
        if len(text) > limit:
            return False
        return (search(text) is None) if negate else (search(text) is not None)

    return test


def _all_test(operand: Any, groups: SavedGroups, fold: bool) -> ValueTest:
    if not isinstance(operand, list):
        return _never
    wanted = [compile_value(item, groups, fold) for item in operand]

    def test(actual: Any) -> bool:
        if not isinstance(actual, list):
            return False
        return all(any(w(item) for item in actual) for w in wanted)

    return test


def _elem_match(operand: Any, groups: SavedGroups) -> ValueTest:
    if not isinstance(operand, Mapping):
        return _never
    item_test: ValueTest
    if is_operator_object(operand):
        item_test = compile_value(operand, groups)
    else:
        item_test = compile_condition(operand, groups)

    def test(actual: Any) -> bool:  # null elements are skipped, as in the JS SDK
        return isinstance(actual, list) and any(v is not None and item_test(v) for v in actual)

    return test


def group_values(entry: Any) -> Sequence[Any] | None:
    """The members of a saved group for ``$inGroup``: a bare list (legacy), or the ``values``
    of a ``{"type": "list"}`` group; None for anything else (which matches nobody). A group
    that does not exist is an empty list."""
    if isinstance(entry, list | tuple):
        return entry
    if isinstance(entry, Mapping) and entry.get("type") == "list":
        values = entry.get("values")
        return values if isinstance(values, list | tuple) else None
    return None


def _group_test(operand: Any, groups: SavedGroups, negate: bool) -> ValueTest:
    if not isinstance(operand, str):
        return _never
    values = group_values(groups[operand]) if operand in groups else ()
    if values is None:
        return _never
    member = _membership(list(values))
    return (lambda actual: not member(actual)) if negate else member


def _saved_group(reference: Any, groups: SavedGroups, visited: frozenset[str]) -> Predicate:
    """The ``$savedGroup`` condition key: ``{"id": ..., "attributeKey": ...}`` naming a typed
    saved group (``list``: the attribute is in its values; ``condition``: its condition holds).
    Anything unrecognized, and a group that refers back to itself, matches nobody."""
    if not isinstance(reference, Mapping):
        return _never
    gid, override = reference.get("id"), reference.get("attributeKey")
    if not isinstance(gid, str) or gid in visited:
        return _never
    if override is not None and not isinstance(override, str):
        return _never
    entry = groups.get(gid)
    if not isinstance(entry, Mapping):
        return _never
    if entry.get("type") == "list":
        key = override if override is not None else entry.get("attributeKey")
        values = entry.get("values")
        if not isinstance(key, str) or not isinstance(values, list | tuple):
            return _never
        getter, member = path_getter(key), _membership(list(values))
        return lambda attrs: member(getter(attrs))
    if entry.get("type") == "condition":
        condition = entry.get("condition")
        if not isinstance(condition, Mapping):
            return _never
        return compile_condition(condition, groups, visited | {gid})
    return _never


def _compile_operator(op: str, operand: Any, groups: SavedGroups) -> ValueTest:
    builder = _OPERATORS.get(op)
    if builder is None:
        return _never
    return builder(op, operand, groups)


def _equality(op: str, operand: Any, _: SavedGroups) -> ValueTest:
    """``$eq``/``$ne``: JavaScript's ``===`` (arrays and objects are never equal)."""
    if type(operand) is str:  # only a string equals a string
        if op == "$eq":
            return lambda actual: actual == operand
        return lambda actual: actual != operand
    if op == "$eq":
        return lambda actual: js.strictly_equal(actual, operand)
    return lambda actual: not js.strictly_equal(actual, operand)


_NUMBER_TYPES = (int, float)
_SYMBOLS = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}


def _comparison(op: str, operand: Any, _: SavedGroups) -> ValueTest:
    """``$lt``... : JavaScript's relational operators (numbers as numbers, two strings by UTF-16
    code units, anything else through ToPrimitive and ToNumber; a NaN compares false)."""
    symbol = _SYMBOLS[op]
    if type(operand) in _NUMBER_TYPES:  # the common case: a number against a number
        fast: Callable[[Any], bool] = {
            "$lt": lambda a: a < operand,
            "$lte": lambda a: a <= operand,
            "$gt": lambda a: a > operand,
            "$gte": lambda a: a >= operand,
        }[op]

        def numeric(actual: Any) -> bool:
            if type(actual) in _NUMBER_TYPES:
                return fast(actual)
            return js.compare(symbol, actual, operand)

        return numeric
    return lambda actual: js.compare(symbol, actual, operand)


def _size(_op: str, operand: Any, groups: SavedGroups) -> ValueTest:
    inner = compile_value(operand, groups)
    return lambda actual: isinstance(actual, list) and inner(len(actual))


def _exists(_op: str, operand: Any, _: SavedGroups) -> ValueTest:
    if js.truthy(operand):
        return lambda actual: actual is not None
    return lambda actual: actual is None


def _type(_op: str, operand: Any, _: SavedGroups) -> ValueTest:
    return lambda actual: type_name(actual) == operand


def _not(_op: str, operand: Any, groups: SavedGroups) -> ValueTest:
    inner = compile_value(operand, groups)
    return lambda actual: not inner(actual)


def _in(op: str, operand: Any, _: SavedGroups) -> ValueTest:
    if not isinstance(operand, list):
        return _never
    member = _membership(operand, fold=op in ("$ini", "$nini"))
    if op in ("$nin", "$nini"):
        return lambda actual: not member(actual)
    return member


OperatorBuilder = Callable[[str, Any, SavedGroups], ValueTest]

_OPERATORS: dict[str, OperatorBuilder] = {
    "$eq": _equality,
    "$ne": _equality,
    "$lt": _comparison,
    "$lte": _comparison,
    "$gt": _comparison,
    "$gte": _comparison,
    "$veq": lambda op, v, _: _version_test(op, v),
    "$vne": lambda op, v, _: _version_test(op, v),
    "$vlt": lambda op, v, _: _version_test(op, v),
    "$vlte": lambda op, v, _: _version_test(op, v),
    "$vgt": lambda op, v, _: _version_test(op, v),
    "$vgte": lambda op, v, _: _version_test(op, v),
    "$in": _in,
    "$nin": _in,
    "$ini": _in,
    "$nini": _in,
    "$all": lambda _op, v, g: _all_test(v, g, fold=False),
    "$alli": lambda _op, v, g: _all_test(v, g, fold=True),
    "$regex": lambda _op, v, _: _regex_test(v, 0, negate=False),
    "$regexi": lambda _op, v, _: _regex_test(v, re.IGNORECASE, negate=False),
    "$notRegex": lambda _op, v, _: _regex_test(v, 0, negate=True),
    "$notRegexi": lambda _op, v, _: _regex_test(v, re.IGNORECASE, negate=True),
    "$elemMatch": lambda _op, v, g: _elem_match(v, g),
    "$size": _size,
    "$exists": _exists,
    "$type": _type,
    "$not": _not,
    "$inGroup": lambda _op, v, g: _group_test(v, g, negate=False),
    "$notInGroup": lambda _op, v, g: _group_test(v, g, negate=True),
}

OPERATORS: frozenset[str] = frozenset(_OPERATORS)

# ---------------------------------------------------------------- authoring checks

_LIST_OPERANDS = frozenset({"$in", "$nin", "$ini", "$nini", "$all", "$alli"})
_REGEX_OPERANDS = frozenset({"$regex", "$regexi", "$notRegex", "$notRegexi"})
_TYPES = frozenset({"null", "boolean", "number", "string", "array", "object"})


def problems(
    condition: Any, saved_groups: SavedGroups | None = None, path: str = ""
) -> list[tuple[str, str, Any]]:
    """Every authoring mistake in a condition, as ``(path, message, bad value)`` triples."""
    found: list[tuple[str, str, Any]] = []
    if not isinstance(condition, Mapping):
        return [(path, "a condition must be a table/object", condition)]
    for key, value in condition.items():
        here = f"{path}.{key}" if path else str(key)
        if key in ("$or", "$nor", "$and"):
            if not isinstance(value, list):
                found.append((here, f"{key} takes a list of conditions", value))
                continue
            for i, part in enumerate(value):
                found.extend(problems(part, saved_groups, f"{here}[{i}]"))
        elif key == "$not":
            found.extend(problems(value, saved_groups, here))
        elif key == "$savedGroup":
            found.extend(_saved_group_problems(value, saved_groups, here))
        else:
            found.extend(_value_problems(value, saved_groups, here))
    return found


def _saved_group_problems(
    reference: Any, saved_groups: SavedGroups | None, path: str
) -> list[tuple[str, str, Any]]:
    if not isinstance(reference, Mapping) or not isinstance(reference.get("id"), str):
        return [(path, 'expected {id = "GROUP"} (and optionally attributeKey)', reference)]
    unknown = set(reference) - {"id", "attributeKey"}
    if unknown:
        return [(path, f"unknown keys {sorted(unknown)} (allowed: id, attributeKey)", reference)]
    if "attributeKey" in reference and not isinstance(reference["attributeKey"], str):
        return [(f"{path}.attributeKey", "expected an attribute path", reference["attributeKey"])]
    gid = reference["id"]
    if saved_groups is not None:
        entry = saved_groups.get(gid)
        if entry is None:
            return [(f"{path}.id", "unknown saved group", gid)]
        if not isinstance(entry, Mapping):
            return [(f"{path}.id", "$savedGroup needs a typed group (type list or condition)", gid)]
    return []


def _value_problems(
    value: Any, saved_groups: SavedGroups | None, path: str
) -> list[tuple[str, str, Any]]:
    if isinstance(value, Mapping) and not value:
        return [(path, "an empty table: write the value to compare with, or an operator", value)]
    if not (isinstance(value, Mapping) and is_operator_object(value) and value):
        return []
    found: list[tuple[str, str, Any]] = []
    for op, operand in value.items():
        here = f"{path}.{op}"
        if op not in _OPERATORS:
            found.append((here, f"unknown operator {op!r}", operand))
        elif op in _LIST_OPERANDS and not isinstance(operand, list):
            found.append((here, f"{op} takes a list", operand))
        elif (
            op in _REGEX_OPERANDS and (why := _regex_problem(operand, op.endswith("i"))) is not None
        ):
            found.append((here, why, operand))
        elif op == "$type" and not (isinstance(operand, str) and operand in _TYPES):
            found.append((here, f"$type must be one of {sorted(_TYPES)}", operand))
        elif op in ("$inGroup", "$notInGroup") and not isinstance(operand, str):
            found.append((here, "expected the name of a saved group", operand))
        elif op in ("$inGroup", "$notInGroup") and (
            saved_groups is not None and operand not in saved_groups
        ):
            found.append((here, "unknown saved group", operand))
        elif op in ("$not", "$size"):
            found.extend(_value_problems(operand, saved_groups, here))
        elif op == "$elemMatch":
            if is_operator_object(operand):
                found.extend(_value_problems(operand, saved_groups, here))
            else:
                found.extend(problems(operand, saved_groups, here))
    return found
