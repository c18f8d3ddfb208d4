"""Audience conditions compiled to Python source: one function per audience, one ``compile()``.

``core.conditions`` gives every GrowthBook operator its meaning as closures; it is the reference.
Here the site's audiences become the body of one generated module, so the request path runs
straight-line Python with no call per operator:

    {"country": {"$in": ["DE", "FR"]}, "visits": {"$gte": 10}}

becomes (names ``_kN`` are constants bound in the module's namespace)::

    def _p0(a):
        if type(a) is not dict and not isinstance(a, _Mapping):
            a = {}
        return ((_v0 in _k0 if type(_v0 := a.get('country')) is str else _k1(_v0))
                and (_v1 >= _k2 if type(_v1 := a.get('visits')) in _NUMBERS else _k3(_v1)))

Only the typed common case of an operator is inlined (a string against a string list, a number
against a number); every other case calls the reference closure for that operator, so the
semantics are the reference's by construction (the conformance cases run through both).
Author text never becomes source: string keys and literals are written with ``repr`` (which
round-trips any ``str``); every other value is bound as a namespace constant. A condition too
deep for Python's parser falls back to the reference closures.

The engine compiles per-slot *hit vectors* only (``compile_hits``): one function returning the
hits of every audience a slot's rules and segments name, as a tuple, evaluated inline in one
call (``core.targeting`` maps the tuple to the rules' outcome). One function per audience
(``compile_predicates``) serves tools such as ``edgepick explain``. Compiling costs a few
hundred microseconds per snapshot in CPython, paid once when an engine is prepared.

Where every audience of a slot reads plain fields of the visitor state or the request context
(``core.features.FIELDS``: ``country`` is ``c.country``, ``visits`` is ``s.visits``), the slot
also gets a *fused* function over ``(s, c)`` (``compile_fused_hits``): the same expressions with
each ``a.get(key)`` replaced by the field, so a request without extra attributes builds no
attribute document (18% fewer instructions per evaluation on the GrowthBook-equivalent slot,
bench/vs_growthbook.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core import generated
from core.conditions import (
    Attributes,
    Predicate,
    SavedGroups,
    compile_condition,
    compile_value,
    is_operator_object,
    path_getter,
)
from core.jsvalue import truthy

_LOGICAL = ("$or", "$nor", "$and", "$not")
_ORDERING = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
_PROLOGUE = "    if type(a) is not dict and not isinstance(a, _Mapping):\n        a = {}\n"


class _Unfusable(Exception):
    """A condition that needs the attribute document itself (a saved group, a dotted path, an
    attribute that is no plain field of the visitor or the request)."""


class _Emitter:
    """Writes Python expressions for conditions, binding non-literal values as constants.

    With ``fields`` (attribute name -> source reading it from ``s``/``c``: ``core.features``),
    attributes are read straight from the visitor state and request context instead of the
    attribute document ``a``; a condition that needs the document raises ``_Unfusable``."""

    def __init__(self, groups: SavedGroups, fields: Mapping[str, str] | None = None) -> None:
        self.groups = groups
        self.fields = fields
        self.namespace: dict[str, Any] = {"_Mapping": Mapping, "_NUMBERS": (int, float)}
        self.names = 0

    def _fresh(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def const(self, value: Any) -> str:
        name = self._fresh("_k")
        self.namespace[name] = value
        return name

    def condition(self, condition: Mapping[str, Any]) -> str:
        parts = [self._entry(key, value) for key, value in condition.items()]
        return _join(parts, "and", empty="True")

    def _entry(self, key: Any, value: Any) -> str:
        if key in _LOGICAL:
            return self._logical(key, value)
        if self.fields is not None:  # read from the state and context: a plain field or nothing
            if type(key) is not str or key not in self.fields:
                raise _Unfusable(key)
            return self._value(self.fields[key], value)
        if key == "$savedGroup":
            return f"{self.const(compile_condition({key: value}, self.groups))}(a)"
        if isinstance(key, str) and "." in key:
            test = compile_value(value, self.groups)
            return f"{self.const(test)}({self.const(path_getter(key))}(a))"
        literal = repr(key) if type(key) is str else self.const(key)
        return self._value(f"a.get({literal})", value)

    def _logical(self, key: str, value: Any) -> str:
        if key == "$not":
            return f"(not {self.condition(value)})" if isinstance(value, Mapping) else "True"
        if not isinstance(value, list):
            return "False"
        parts = [self.condition(c) if isinstance(c, Mapping) else "False" for c in value]
        if key == "$and":
            return _join(parts, "and", empty="True")
        if key == "$or":
            return _join(parts, "or", empty="True")
        return f"(not {_join(parts, 'or', empty='True')})"  # $nor

    def _value(self, get: str, expected: Any) -> str:
        if isinstance(expected, Mapping) and is_operator_object(expected):
            tests = [self._operator(get, op, operand) for op, operand in expected.items()]
            return _join(tests, "and", empty="True")
        reference = self.const(compile_value(expected, self.groups))
        if type(expected) is str:  # a string against a string; JS String(v) for the rest
            v = self._fresh("_v")
            return f"({v} == {expected!r} if type({v} := {get}) is str else {reference}({v}))"
        return f"{reference}({get})"

    def _operator(self, get: str, op: str, operand: Any) -> str:
        if op in ("$eq", "$ne") and type(operand) is str:
            return f"({get} {'==' if op == '$eq' else '!='} {operand!r})"
        if op == "$exists":
            return f"({get} {'is not' if truthy(operand) else 'is'} None)"
        reference = self.const(compile_value({op: operand}, self.groups))
        v = self._fresh("_v")
        if op in _ORDERING and type(operand) in (int, float):
            fast = f"{v} {_ORDERING[op]} {self.const(operand)}"
            return f"({fast} if type({v} := {get}) in _NUMBERS else {reference}({v}))"
        if op in ("$in", "$nin") and isinstance(operand, list) and _all_strings(operand):
            fast = f"{v} {'in' if op == '$in' else 'not in'} {self.const(frozenset(operand))}"
            return f"({fast} if type({v} := {get}) is str else {reference}({v}))"
        return f"{reference}({get})"


def _all_strings(items: list[Any]) -> bool:
    return all(type(item) is str for item in items)


def _join(parts: list[str], word: str, empty: str) -> str:
    if not parts:
        return empty
    if len(parts) == 1:
        return parts[0]
    return "(" + f" {word} ".join(parts) + ")"


Hits = Callable[[Attributes], tuple[bool, ...]]


def compile_predicates(
    conditions: Mapping[str, Mapping[str, Any]], saved_groups: SavedGroups | None = None
) -> dict[str, Predicate]:
    """One predicate per named condition, each equivalent to ``conditions.evaluate``."""
    groups: SavedGroups = saved_groups or {}
    emitter = _Emitter(groups)
    names = {name: f"_p{i}" for i, name in enumerate(conditions)}
    _define({names[n]: _expression(emitter, c) for n, c in conditions.items()}, emitter.namespace)
    return {
        name: emitter.namespace.get(names[name]) or compile_condition(condition, groups)
        for name, condition in conditions.items()
    }


def compile_hits(
    conditions: Mapping[str, Mapping[str, Any]],
    groups_of: Mapping[str, Sequence[str]],
    saved_groups: SavedGroups | None = None,
) -> dict[str, Hits]:
    """For each entry of ``groups_of``, a function returning the hits of the audiences it
    names, in order, as a tuple (an unknown name never matches).

    A group's function evaluates every one of its audiences inline, in one call: cheaper than
    one call per audience for the handful of audiences a slot's rules name. Only the audiences
    some group names are compiled.
    """
    groups: SavedGroups = saved_groups or {}
    emitter = _Emitter(groups)
    used = {m for members in groups_of.values() for m in members if m in conditions}
    expressions = {m: _expression(emitter, conditions[m]) for m in sorted(used)}
    functions: dict[str, str | None] = {}
    for i, members in enumerate(groups_of.values()):
        inline = [expressions[m] if m in conditions else "False" for m in members]
        # a tuple display; a member left to the reference leaves the group to the fallback
        functions[f"_g{i}"] = (
            None if None in inline else "(" + "".join(f"{e}, " for e in inline) + ")"
        )
    _define(functions, emitter.namespace)
    hits: dict[str, Hits] = {}
    for i, (group, members) in enumerate(groups_of.items()):
        generated = emitter.namespace.get(f"_g{i}")
        if generated is None:
            generated = _reference_hits(
                tuple(
                    compile_condition(conditions[m], groups) if m in conditions else _never
                    for m in members
                )
            )
        hits[group] = generated
    return hits


FusedHits = Callable[[Any, Any], tuple[bool, ...]]  # (visitor state, request context) -> hits


def compile_fused_hits(
    conditions: Mapping[str, Mapping[str, Any]],
    groups_of: Mapping[str, Sequence[str]],
    fields: Mapping[str, str],
    saved_groups: SavedGroups | None = None,
) -> dict[str, FusedHits]:
    """For each entry of ``groups_of`` whose audiences read only plain fields (``fields``:
    attribute name -> its source over the visitor state ``s`` and request context ``c``), a
    function ``(s, c) -> hits`` equal to ``compile_hits``' on the attribute document those
    fields make: no document is built and no dict read per attribute. Groups needing the
    document (saved groups, dotted paths, other attributes) are left out: the caller uses
    ``compile_hits``' function for them, and for any request with extra attributes."""
    emitter = _Emitter(saved_groups or {}, fields)
    functions: dict[str, str | None] = {}
    for i, members in enumerate(groups_of.values()):
        try:
            inline = [
                emitter.condition(conditions[m]) if m in conditions else "False" for m in members
            ]
        except (_Unfusable, RecursionError):
            functions[f"_f{i}"] = None
            continue
        functions[f"_f{i}"] = "(" + "".join(f"{e}, " for e in inline) + ")"
    _define(functions, emitter.namespace, "s, c", "", "fused-audiences")
    made = {group: emitter.namespace.get(f"_f{i}") for i, group in enumerate(groups_of)}
    return {group: function for group, function in made.items() if function is not None}


def _expression(emitter: _Emitter, condition: Mapping[str, Any]) -> str | None:
    """The condition as an expression over ``a``, or None if too deep to write out."""
    try:
        return emitter.condition(condition)
    except RecursionError:  # left to the reference closures
        return None


def _define(
    functions: Mapping[str, str | None],
    namespace: dict[str, Any],
    params: str = "a",
    prologue: str = _PROLOGUE,
    kind: str = "audiences",
) -> None:
    """Compile ``def name(params): return expression`` for each entry into ``namespace``, in
    one go (one too deep for Python's parser: the others one by one, that one left undefined)."""
    sources = [
        f"def {name}({params}):\n{prologue}    return {expression}\n"
        for name, expression in functions.items()
        if expression is not None
    ]
    try:
        generated.run("".join(sources), kind, namespace)
    except (SyntaxError, RecursionError, MemoryError):
        for source in sources:
            try:
                generated.run(source, kind, namespace)
            except (SyntaxError, RecursionError, MemoryError):
                continue


def _never(_attrs: Attributes) -> bool:
    return False


def _reference_hits(predicates: tuple[Predicate, ...]) -> Hits:
    return lambda attrs: tuple(bool(p(attrs)) for p in predicates)


def compile_predicate(
    condition: Mapping[str, Any], saved_groups: SavedGroups | None = None
) -> Predicate:
    """One condition's predicate (tests, tools): ``compile_predicates`` for a single entry."""
    return compile_predicates({"": condition}, saved_groups)[""]
