"""Refuse regular expressions that a visitor's input could make backtrack for seconds (ReDoS).

Conditions' ``$regex`` operators run on values a visitor controls (the URL path, UTM fields).
Python's ``re`` and JavaScript's ``RegExp`` backtrack, so some patterns take time exponential or
high-polynomial in the input's length (Davis et al., "The impact of regular expression denial of
service (ReDoS) in practice", ESEC/FSE 2018; Weideman et al., "Analyzing matching time behavior
of backtracking regular expression matchers by using ambiguity of NFA", CIAA 2016). Deciding
exactly which ones is hard; this module refuses the known shapes conservatively, and the
evaluator caps the input at :data:`MAX_INPUT` characters, so what remains costs at most about
``MAX_INPUT ** 2`` steps:

1. **Nested quantifiers** (star height > 1): a repeated group holding another variable-count
   repeat, e.g. ``(a+)+``, ``(\\w+\\s?)*``, ``(/[a-z]+)*``: the exponential case.
2. **Overlapping alternatives under a quantifier**: ``(a|a)*``, ``(\\w|\\d)+``, ``(a|ab)*``: two
   branches that can start with the same character let the matcher split a run in 2^n ways.
3. **Too many ways to split one stretch**: every variable-count repeat (``a?``, ``a{0,16}``,
   ``.*``) and every alternation whose branches can start alike is a choice point with some
   number of ways (an unbounded repeat: ``MAX_INPUT``); choice points that can consume the same
   characters multiply. The largest such product, times ``MAX_INPUT`` for an unanchored search,
   must stay under ``MAX_COST`` (10^7) steps: ``.*.*x`` (10^9), ``a{0,16}`` five times (10^9),
   ``a?`` 24 times then ``a`` 24 times (10^7) are refused; ``^/c/.*/p/.*$`` (10^6) and an IPv4
   shape (81) are not.
4. **Backreferences** (no polynomial bound at all) and patterns over :data:`MAX_PATTERN` chars.

Character sets are compared over a sample alphabet (Latin-1 and a few wider code points), which
is exact for literals, ranges and classes within it and errs towards "overlap" elsewhere.
"""

from __future__ import annotations

import re
from re import _constants as c  # type: ignore[attr-defined]  # the stdlib parser re uses
from re import _parser as p  # type: ignore[attr-defined]
from typing import Any

MAX_INPUT = 1024  # characters of a value a regex condition looks at; longer values never match
MAX_PATTERN = 1000  # characters of an authored pattern
MAX_COST = 10_000_000  # matching steps allowed on a MAX_INPUT-character value (rule 3)
_BOUNDED_SPAN = 16  # a repeat whose count can vary by more than this counts as unbounded
_ALPHABET = [chr(i) for i in range(256)] + ["\u0100", "\u03b1", "\u0416", "\u4e00", "\U0001f600"]

CharSet = frozenset[str]
_ALL: CharSet = frozenset(_ALPHABET)


def problem(pattern: str, flags: int = 0) -> str | None:
    """Why ``pattern`` is refused (one sentence), or None when it is safe to run on visitor input.

    Invalid patterns are the caller's concern (``re.compile``); they give None here.
    """
    if len(pattern) > MAX_PATTERN:
        return f"a pattern longer than {MAX_PATTERN} characters"
    try:
        tree = p.parse(pattern, flags)
    except (re.error, RecursionError, OverflowError):
        return None
    fold = bool(flags & re.IGNORECASE)
    try:
        found = _nested(tree.data, fold, inside=False)
        if found:
            return found
        units = _units(tree.data, fold)
    except RecursionError:
        return "a pattern nested too deeply"
    cost = _cost(units) * (1 if _anchored(tree.data) else MAX_INPUT)
    if cost > MAX_COST:
        return (
            "repeats or alternatives that can match the same characters"
            + ("" if _anchored(tree.data) else " in an unanchored search")
            + f": about 10^{len(str(int(cost))) - 1} steps on a {MAX_INPUT}-character value "
            f"(allowed: 10^{len(str(MAX_COST)) - 1}); anchor it with ^, make the parts' "
            "characters distinct, or use fewer optional parts"
        )
    return None


def _is_repeat(op: Any) -> bool:
    return op in (c.MAX_REPEAT, c.MIN_REPEAT)


def _variable(lo: int, hi: int) -> bool:
    return hi != lo  # a?, a*, a{0,16}, a{2,5}: each can match in more than one way


def _unbounded(lo: int, hi: int) -> bool:
    return hi is c.MAXREPEAT or hi == c.MAXREPEAT or hi - lo > _BOUNDED_SPAN


def _nested(items: Any, fold: bool, inside: bool) -> str | None:
    """Rules 1, 2 and 4; ``inside``: under a repeat that can run more than once."""
    for op, av in items:
        if op in (c.GROUPREF, c.GROUPREF_EXISTS):
            return "a backreference (its matching time has no polynomial bound)"
        if _is_repeat(op):
            lo, hi, body = av
            if inside and _variable(lo, hi):
                return (
                    "a quantifier inside a repeated group (nested quantifiers, e.g. (a+)+): "
                    "matching time can grow exponentially; use one quantifier over a class"
                )
            repeats = hi > 1
            if repeats and _variable(lo, hi):
                overlap = _branch_overlap(body, fold)
                if overlap:
                    return overlap
            found = _nested(body, fold, inside or repeats)
        elif op == c.POSSESSIVE_REPEAT:
            found = _nested(av[2], fold, False)  # atomic: never backtracked into
        elif op == c.ATOMIC_GROUP:
            found = _nested(av, fold, False)
        elif op == c.SUBPATTERN:
            found = _nested(av[3], fold, inside)
        elif op == c.BRANCH:
            found = next((f for b in av[1] if (f := _nested(b, fold, inside))), None)
        elif op in (c.ASSERT, c.ASSERT_NOT):
            found = _nested(av[1], fold, inside)
        else:
            found = None
        if found:
            return found
    return None


def _branch_overlap(body: Any, fold: bool) -> str | None:
    """Rule 2: a BRANCH directly in a repeated body whose alternatives can start alike."""
    for op, av in body:
        if op == c.SUBPATTERN:
            found = _branch_overlap(av[3], fold)
            if found:
                return found
        elif op == c.BRANCH and _ambiguous([_first(b, fold) for b in av[1]]):
            return (
                "a repeated group whose alternatives can match the same text "
                "(e.g. (a|ab)*): matching time can grow exponentially; make the "
                "alternatives start with different characters or use a class"
            )
    return None


def _ambiguous(firsts: list[CharSet | None]) -> bool:
    """Whether two alternatives can start alike (a nullable one, ``None``, starts like all)."""
    return any(
        a is None or b is None or bool(a & b) for i, a in enumerate(firsts) for b in firsts[i + 1 :]
    )


def _first(items: Any, fold: bool) -> CharSet | None:
    """The characters a sequence can start with; None when it can match the empty string."""
    for op, av in items:
        if op == c.AT:
            continue
        if op == c.SUBPATTERN:
            got = _first(av[3], fold)
            if got is None:
                continue  # a nullable group: what follows can start it too (approximation)
            return got
        if _is_repeat(op) or op == c.POSSESSIVE_REPEAT:
            got = _first(av[2], fold)
            if av[0] == 0 or got is None:
                return None
            return got
        if op == c.BRANCH:
            sets = [_first(b, fold) for b in av[1]]
            if any(s is None for s in sets):
                return None
            return frozenset().union(*[s for s in sets if s is not None])
        return _chars(op, av, fold)
    return None


def _chars(op: Any, av: Any, fold: bool) -> CharSet:
    """The characters one item matches, over the sample alphabet."""
    if op == c.LITERAL:
        return _fold(frozenset({chr(av)}), fold)
    if op == c.NOT_LITERAL:
        return _ALL - _fold(frozenset({chr(av)}), fold)
    if op == c.ANY:
        return _ALL
    if op == c.IN:
        negate = False
        out: set[str] = set()
        for iop, iav in av:
            if iop == c.NEGATE:
                negate = True
            elif iop == c.LITERAL:
                out.add(chr(iav))
            elif iop == c.RANGE:
                out.update(ch for ch in _ALPHABET if iav[0] <= ord(ch) <= iav[1])
            elif iop == c.CATEGORY:
                out.update(_category(iav))
            else:
                return _ALL
        got = _fold(frozenset(out), fold)
        return _ALL - got if negate else got
    return _ALL  # anything else: assume it can match anything


_CATEGORIES = {
    c.CATEGORY_DIGIT: r"\d",
    c.CATEGORY_NOT_DIGIT: r"\D",
    c.CATEGORY_SPACE: r"\s",
    c.CATEGORY_NOT_SPACE: r"\S",
    c.CATEGORY_WORD: r"\w",
    c.CATEGORY_NOT_WORD: r"\W",
}


def _category(category: Any) -> CharSet:
    pattern = _CATEGORIES.get(category)
    if pattern is None:
        return _ALL
    test = re.compile(pattern).fullmatch
    return frozenset(ch for ch in _ALPHABET if test(ch))


def _fold(chars: CharSet, fold: bool) -> CharSet:
    if not fold:
        return chars
    return frozenset(chars | {ch.lower() for ch in chars} | {ch.upper() for ch in chars}) & _ALL


Unit = tuple[CharSet, float]  # the characters a choice point can match, and its ways


def _units(items: Any, fold: bool) -> list[Unit]:
    """Rule 3's choice points: every variable-count repeat (ways: ``MAX_INPUT`` when unbounded,
    else its count span + 1) and every alternation whose branches can start alike (ways: its
    branch count), with the characters each can consume."""
    found: list[Unit] = []
    for op, av in items:
        if _is_repeat(op):
            lo, hi, body = av
            if _variable(lo, hi):
                ways = float(MAX_INPUT) if _unbounded(lo, hi) else float(hi - lo + 1)
                found.append((_body_chars(body, fold), ways))
            found += _units(body, fold)
        elif op == c.POSSESSIVE_REPEAT:
            continue  # atomic: one way to match
        elif op == c.SUBPATTERN:
            found += _units(av[3], fold)
        elif op == c.BRANCH:
            branches = av[1]
            firsts = [_first(b, fold) for b in branches]
            if _ambiguous(firsts):  # an empty branch adds its ways to every stretch: links to all
                nullable = any(f is None for f in firsts)
                chars = (
                    _ALL
                    if nullable
                    else frozenset().union(*[_body_chars(b, fold) for b in branches])
                )
                found.append((chars, float(len(branches))))
            for branch in branches:
                found += _units(branch, fold)
        elif op in (c.ASSERT, c.ASSERT_NOT):
            found += _units(av[1], fold)
    return found


def _cost(units: list[Unit]) -> float:
    """The largest product of ways among choice points linked by shared characters: how many
    ways a backtracking matcher may try to split one stretch of input (1 with none)."""
    best = 1.0
    seen: set[int] = set()
    for start in range(len(units)):
        if start in seen:
            continue
        group, todo = {start}, [start]
        while todo:
            i = todo.pop()
            for j in range(len(units)):
                if j not in group and units[i][0] & units[j][0]:
                    group.add(j)
                    todo.append(j)
        seen |= group
        product = 1.0
        for i in group:
            product *= units[i][1]
        best = max(best, product)
    return best


def _body_chars(items: Any, fold: bool) -> CharSet:
    out: set[str] = set()
    for op, av in items:
        if op == c.AT:
            continue
        if op == c.SUBPATTERN:
            out |= _body_chars(av[3], fold)
        elif _is_repeat(op) or op == c.POSSESSIVE_REPEAT:
            out |= _body_chars(av[2], fold)
        elif op == c.BRANCH:
            for branch in av[1]:
                out |= _body_chars(branch, fold)
        else:
            out |= _chars(op, av, fold)
    return frozenset(out)


def _anchored(items: Any) -> bool:
    """Does the pattern start with ``^`` / ``\\A`` (so a search tries one start position)?"""
    for op, av in items:
        if op == c.AT:
            return bool(av in (c.AT_BEGINNING, c.AT_BEGINNING_STRING))
        if op == c.SUBPATTERN:
            return _anchored(av[3])
        return False
    return False
