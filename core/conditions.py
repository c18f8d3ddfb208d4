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

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core import regex_safety

Attributes = Mapping[str, Any]
Predicate = Callable[[Attributes], bool]
ValueTest = Callable[[Any], bool]
SavedGroups = Mapping[str, Sequence[Any]]

_LOGICAL = ("$or", "$nor", "$and", "$not")


def evaluate(
    condition: Mapping[str, Any], attributes: Attributes, saved_groups: SavedGroups | None = None
) -> bool:
    """Compile and evaluate in one call (tests, tools). The request path keeps the predicate."""
    return compile_condition(condition, saved_groups)(attributes)


def compile_condition(
    condition: Mapping[str, Any], saved_groups: SavedGroups | None = None
) -> Predicate:
    """A predicate over attributes, equivalent to GrowthBook's ``evalCondition``."""
    groups: SavedGroups = saved_groups or {}
    tests = tuple(_compile_entry(key, value, groups) for key, value in condition.items())
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


def _compile_entry(key: str, value: Any, groups: SavedGroups) -> Predicate:
    if key in _LOGICAL:
        return _compile_logical(key, value, groups)
    test = compile_value(value, groups)
    if "." in key:
        getter = path_getter(key)
        return lambda attrs: test(getter(attrs))

    def entry(attrs: Any) -> bool:  # the common case, one lookup in a dict
        if type(attrs) is dict:
            return test(attrs.get(key))
        return test(attrs.get(key) if isinstance(attrs, Mapping) else None)

    return entry


def _compile_logical(key: str, value: Any, groups: SavedGroups) -> Predicate:
    if key == "$not":
        inner = compile_condition(value, groups) if isinstance(value, Mapping) else _never
        return lambda attrs: not inner(attrs)
    if not isinstance(value, list):
        return _never
    parts = tuple(compile_condition(c, groups) if isinstance(c, Mapping) else _never for c in value)
    if key == "$and":
        return _all_of(parts)
    if not parts:  # an empty $or passes, so an empty $nor fails
        return _always if key == "$or" else _never
    disjunction = _any_of(parts)
    if key == "$or":
        return disjunction
    return lambda attrs: not disjunction(attrs)


def path_getter(path: str) -> Callable[[Any], Any]:
    keys = tuple(path.split("."))

    def get(attrs: Any) -> Any:
        current = attrs
        for key in keys:
            if type(current) is not dict and not isinstance(current, Mapping):
                return None
            current = current.get(key)
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
        else:
            names.add(str(key).split(".")[0])
    return names


def is_operator_object(value: Any) -> bool:
    """A mapping whose keys all start with ``$`` (an empty mapping counts)."""
    return isinstance(value, Mapping) and all(str(k).startswith("$") for k in value)


def compile_value(condition_value: Any, groups: SavedGroups | None = None) -> ValueTest:
    """A test on one attribute value, equivalent to GrowthBook's ``evalConditionValue``."""
    if isinstance(condition_value, Mapping) and is_operator_object(condition_value):
        ops = [
            _compile_operator(op, operand, groups or {}) for op, operand in condition_value.items()
        ]
        if len(ops) == 1:
            return ops[0]
        return lambda value: all(op(value) for op in ops)
    expected = condition_value
    if type(expected) is str:
        return lambda value: value == expected
    return lambda value: json_equal(value, expected)


# ---------------------------------------------------------------- values


_SCALARS = (str, int, float)


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: booleans are not numbers, lists compare in order."""
    ta = type(a)
    if ta is type(b) and ta in _SCALARS:
        return bool(a == b)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return (type(a) is type(b) and a == b) or (_is_number(a) and _is_number(b) and a == b)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def type_name(value: Any) -> str:
    """The JSON type name GrowthBook's ``$type`` compares against."""
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


def _to_number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return float(value)
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip()) if value.strip() else 0.0
        except ValueError:
            return math.nan
    return math.nan


def _ordering(op: str) -> Callable[[Any, Any], bool]:
    compare: Callable[[Any, Any], bool] = {
        "$lt": lambda a, b: a < b,
        "$lte": lambda a, b: a <= b,
        "$gt": lambda a, b: a > b,
        "$gte": lambda a, b: a >= b,
    }[op]

    def test(actual: Any, expected: Any) -> bool:
        if _is_number(expected) or _is_number(actual):
            return compare(_to_number(actual), _to_number(expected))
        if isinstance(actual, str) and isinstance(expected, str):
            return compare(actual, expected)
        if actual is None and isinstance(expected, str):
            return compare("", expected) if op in ("$lt", "$lte") else False
        return False

    return test


_BUILD_OR_V = re.compile(r"(^v|\+.*$)")
_VERSION_SPLIT = re.compile(r"[-.]")
_DIGITS = re.compile(r"^[0-9]+$")


def padded_version(value: Any) -> str:
    """A version string that compares correctly as a plain string (GrowthBook's scheme).

    ``v1.2.3+build`` -> ``"    1-    2-    3-~"``: numeric parts left-padded to 5, a release
    without pre-release tag gets ``~`` (sorts after any tag), build metadata is dropped.
    """
    if _is_number(value):
        value = str(value)
    if not value or not isinstance(value, str):
        value = "0"
    parts = _VERSION_SPLIT.split(_BUILD_OR_V.sub("", value))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(p.rjust(5, " ") if _DIGITS.match(p) else p for p in parts)


def _version_test(op: str, expected: Any) -> ValueTest:
    target = padded_version(expected)
    compare: Callable[[str, str], bool] = {
        "$veq": lambda a, b: a == b,
        "$vne": lambda a, b: a != b,
        "$vlt": lambda a, b: a < b,
        "$vlte": lambda a, b: a <= b,
        "$vgt": lambda a, b: a > b,
        "$vgte": lambda a, b: a >= b,
    }[op]
    return lambda actual: compare(padded_version(actual), target)


def _hashable_set(items: Sequence[Any], fold: bool) -> tuple[frozenset[Any], list[Any]]:
    """Split items into a set of hashable keys (JSON-typed) and a list of the unhashable rest."""
    keys: set[Any] = set()
    rest: list[Any] = []
    for item in items:
        if isinstance(item, list | dict):
            rest.append(item)
        else:
            keys.add(_member_key(item, fold))
    return frozenset(keys), rest


def _member_key(item: Any, fold: bool) -> Any:
    if isinstance(item, bool):
        return ("bool", item)
    if fold and isinstance(item, str):
        return item.lower()
    return item


def _membership(items: Sequence[Any], fold: bool = False) -> ValueTest:
    """GrowthBook's ``isIn``: the value is in the list, or an array shares an element with it."""
    keys, rest = _hashable_set(items, fold)
    if not fold and not rest and all(type(item) is str for item in items):

        def strings(actual: Any) -> bool:  # the common case: a list of strings
            if type(actual) is str:
                return actual in keys
            if isinstance(actual, list):
                return any(type(v) is str and v in keys for v in actual)
            return False

        return strings

    def contains(value: Any) -> bool:
        if isinstance(value, list | dict):
            return any(json_equal(value, r) for r in rest)
        return _member_key(value, fold) in keys

    def test(actual: Any) -> bool:
        if isinstance(actual, list):
            return any(contains(v) for v in actual)
        return contains(actual)

    return test


def _regex(pattern: Any, flags: int) -> re.Pattern[str] | None:
    if not isinstance(pattern, str):
        return None
    try:
        return re.compile(pattern, flags)
    except (re.error, RecursionError, OverflowError):
        return None


def _regex_test(pattern: Any, flags: int, negate: bool) -> ValueTest:
    """``$regex`` and friends. A pattern that can backtrack catastrophically
    (``core.regex_safety``; the compiler refuses it) never matches, and a value longer than
    ``regex_safety.MAX_INPUT`` characters is treated like a non-string: neither operator holds,
    so a visitor's long URL cannot make the edge spin."""
    regex = _regex(pattern, flags)
    if regex is None or regex_safety.problem(pattern, flags) is not None:
        return _never
    search = regex.search
    limit = regex_safety.MAX_INPUT

    def test(actual: Any) -> bool:
        if not isinstance(actual, str) or len(actual) > limit:
            return False
        return (search(actual) is None) if negate else (search(actual) is not None)

    return test


def _all_test(operand: Any, groups: SavedGroups, fold: bool) -> ValueTest:
    if not isinstance(operand, list):
        return _never
    if fold:
        wanted = [_membership([item], fold=True) for item in operand]
    else:
        wanted = [compile_value(item, groups) for item in operand]

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

    def test(actual: Any) -> bool:
        return isinstance(actual, list) and any(item_test(item) for item in actual)

    return test


def _group_test(operand: Any, groups: SavedGroups, negate: bool) -> ValueTest:
    if not isinstance(operand, str) or operand not in groups:
        return _always if negate else _never
    member = _membership(list(groups[operand] or []))
    return (lambda actual: not member(actual)) if negate else member


def _compile_operator(op: str, operand: Any, groups: SavedGroups) -> ValueTest:
    builder = _OPERATORS.get(op)
    if builder is None:
        return _never
    return builder(op, operand, groups)


def _list_only(make: Callable[[list[Any]], ValueTest]) -> Callable[[Any], ValueTest]:
    return lambda operand: make(operand) if isinstance(operand, list) else _never


def _equality(op: str, operand: Any, _: SavedGroups) -> ValueTest:
    if type(operand) is str:  # only a string equals a string: plain == is JSON equality here
        if op == "$eq":
            return lambda actual: actual == operand
        return lambda actual: actual != operand
    if op == "$eq":
        return lambda actual: json_equal(actual, operand)
    return lambda actual: not json_equal(actual, operand)


_NUMBER_TYPES = (int, float)


def _comparison(op: str, operand: Any, _: SavedGroups) -> ValueTest:
    compare = _ordering(op)
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
            return compare(actual, operand)

        return numeric
    return lambda actual: compare(actual, operand)


def _size(_op: str, operand: Any, groups: SavedGroups) -> ValueTest:
    inner = compile_value(operand, groups)
    return lambda actual: isinstance(actual, list) and inner(len(actual))


def _exists(_op: str, operand: Any, _: SavedGroups) -> ValueTest:
    if operand:
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
        else:
            found.extend(_value_problems(value, saved_groups, here))
    return found


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
        elif op in _REGEX_OPERANDS and _regex(operand, 0) is None:
            found.append((here, "not a valid regular expression", operand))
        elif op in _REGEX_OPERANDS and (unsafe := regex_safety.problem(operand)) is not None:
            found.append((here, f"refused, a visitor could make it backtrack: {unsafe}", operand))
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
