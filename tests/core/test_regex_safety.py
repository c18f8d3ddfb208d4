"""Regexes a visitor's input could make backtrack are refused; the evaluator caps its input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import regex_safety
from core.conditions import evaluate, problems

CASES = json.loads((Path(__file__).parents[1] / "cases" / "regex_safety.json").read_text())


@pytest.mark.parametrize(("pattern", "note"), CASES["refused"])
def test_catastrophic_patterns_are_refused(pattern: str, note: str) -> None:
    re.compile(pattern)  # valid: refused for its shape, not its syntax
    why = regex_safety.problem(pattern)
    assert why, f"accepted {pattern!r} ({note})"
    found = problems({"path": {"$regex": pattern}})
    assert [(p, v) for p, _, v in found] == [("path.$regex", pattern)]
    assert "backtrack" in found[0][1] or "backreference" in found[0][1]
    # an unsafe pattern that reaches the evaluator anyway (a hand-made snapshot) never matches
    assert evaluate({"path": {"$regex": pattern}}, {"path": "x"}) is False


@pytest.mark.parametrize(("pattern", "note"), CASES["accepted"])
def test_safe_patterns_are_accepted(pattern: str, note: str) -> None:
    assert regex_safety.problem(pattern) is None, note
    assert problems({"path": {"$regex": pattern}}) == []


def test_atomic_groups_are_safe_but_python_only() -> None:
    assert regex_safety.problem("(?>a+)+b") is None  # never backtracked into
    found = problems({"path": {"$regex": "(?>a+)+b"}})
    assert found and "not a JavaScript regular expression" in found[0][1]


def test_ignorecase_is_taken_into_account() -> None:
    # [a-z] and [A-Z] are disjoint, unless the match ignores case
    assert regex_safety.problem("[a-z]+[A-Z]+x") is None
    assert regex_safety.problem("[a-z]+[A-Z]+x", re.IGNORECASE) is not None


def test_values_over_the_cap_match_neither_way() -> None:
    long = "/" + "a" * regex_safety.MAX_INPUT
    assert evaluate({"path": {"$regex": "^/a"}}, {"path": long}) is False
    assert evaluate({"path": {"$notRegex": "^/b"}}, {"path": long}) is False
    short = long[: regex_safety.MAX_INPUT]
    assert evaluate({"path": {"$regex": "^/a"}}, {"path": short}) is True


def test_over_long_patterns_are_refused() -> None:
    assert regex_safety.problem("a" * (regex_safety.MAX_PATTERN + 1))
    assert regex_safety.problem("a" * regex_safety.MAX_PATTERN) is None


_ATOMS = st.sampled_from(["a", "b", "[a-z]", "\\d", "\\w", ".", "x", "/", "-"])
_QUANTS = st.sampled_from(["", "", "*", "+", "?", "{2}", "{1,3}"])


@st.composite
def _patterns(draw: Any, depth: int = 2) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        if depth and draw(st.booleans()):
            inner = draw(_patterns(depth=depth - 1))
            if draw(st.booleans()):
                inner += "|" + draw(_patterns(depth=depth - 1))
            atom = f"(?:{inner})"
        else:
            atom = draw(_ATOMS)
        parts.append(atom + draw(_QUANTS))
    return ("^" if draw(st.booleans()) else "") + "".join(parts)


@given(_patterns())
def test_every_pattern_gets_an_answer_and_refused_ones_never_run(pattern: str) -> None:
    """Whatever the pattern, ``problem`` answers (no exception); a refused one never matches."""
    try:
        re.compile(pattern)
    except re.error:
        return
    why = regex_safety.problem(pattern)
    assert why is None or (isinstance(why, str) and why)
    if why is not None:
        assert evaluate({"v": {"$regex": pattern}}, {"v": "a"}) is False
        assert evaluate({"v": {"$notRegex": pattern}}, {"v": "a"}) is False
    nested = re.search(r"[*+]\)[*+]", pattern)  # e.g. (?:a+)+ : a nested variable repeat
    if nested:
        assert why is not None
