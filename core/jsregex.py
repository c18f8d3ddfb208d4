"""JavaScript ``RegExp`` patterns (no flags, or ``i``) run by Python's ``re`` with JS meaning.

GrowthBook's ``$regex`` is evaluated by JavaScript at the edge. The two dialects share most
syntax but differ in meaning in a few places, which :func:`translate` rewrites (ECMA-262
22.2, with Annex B's web-compatibility grammar, which is what a RegExp without ``u`` uses):

* ``.`` matches anything but the four line terminators (``\\n \\r \\u2028 \\u2029``);
* ``$`` matches only at the very end (Python's ``$`` also before a final ``\\n``): ``\\Z``;
* ``\\d \\w \\b`` are ASCII-only and ``\\s`` is JS's whitespace set, in and out of classes;
* an escaped ordinary character is that character (``\\A`` is ``A``, ``\\z`` is ``z``);
* ``[^]`` matches any character and ``[]`` none; ``(?<name>...)`` is a named group;
* without the ``u`` flag JavaScript matches UTF-16 code units: a character beyond the Basic
  Multilingual Plane is two (its surrogate pair), in the pattern (``😀?`` makes only the low
  surrogate optional) and in the subject (:func:`code_units`).

Python-only syntax (inline flags ``(?i)``, ``(?P<...>)``, comments ``(?#...)``, atomic groups,
possessive quantifiers) is a syntax error in JavaScript: :class:`Untranslatable` says so, and
the compiler refuses the pattern. Remaining known difference (docs/config.md): with ``i``,
Python folds a few non-ASCII letters onto ASCII ones that JavaScript keeps apart (``ſ`` and
``s``, the Kelvin sign and ``k``).
"""

from __future__ import annotations

import re

LINE_TERMINATORS = "\\n\\r\\u2028\\u2029"
JS_SPACE = "\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
_WORD = "A-Za-z0-9_"
_CLASS_ESCAPES = {"d": "0-9", "w": _WORD, "s": JS_SPACE}
_OUTSIDE = {
    "d": "[0-9]",
    "D": "[^0-9]",
    "w": f"[{_WORD}]",
    "W": f"[^{_WORD}]",
    "s": f"[{JS_SPACE}]",
    "S": f"[^{JS_SPACE}]",
    "b": f"(?:(?<=[{_WORD}])(?![{_WORD}])|(?<![{_WORD}])(?=[{_WORD}]))",
    "B": f"(?:(?<=[{_WORD}])(?=[{_WORD}])|(?<![{_WORD}])(?![{_WORD}]))",
}
_CONTROL = {"t": "\\t", "n": "\\n", "v": "\\v", "f": "\\f", "r": "\\r"}
_SYNTAX = set("^$\\.*+?()[]{}|/")
_PYTHON_ONLY = ("(?P", "(?#", "(?>", "(?(")
_INLINE_FLAGS = re.compile(r"\(\?[aiLmsux-]+[:)]")
_QUANTIFIER = re.compile(r"[*+?]|\{[0-9]+(?:,[0-9]*)?\}")
_POSSESSIVE = re.compile(r"(?<!\\)(?:[*+?}])\+")


class Untranslatable(ValueError):
    """A pattern JavaScript would refuse, or whose JS meaning Python cannot reproduce."""


def translate(pattern: str) -> str:
    """The Python pattern that matches what ``new RegExp(pattern)`` matches."""
    for marker in _PYTHON_ONLY:
        if marker in pattern:
            raise Untranslatable(f"{marker!r} is Python-only syntax, not JavaScript's")
    if _INLINE_FLAGS.search(pattern):
        raise Untranslatable("inline flags such as (?i) are Python-only syntax")
    if _POSSESSIVE.search(pattern):
        raise Untranslatable("possessive quantifiers (*+, ++) are Python-only syntax")
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch in "^$" or pattern.startswith(("\\b", "\\B"), i):
            after = i + (1 if ch in "^$" else 2)
            if _QUANTIFIER.match(pattern, after):  # JavaScript: "nothing to repeat"
                raise Untranslatable(f"a quantifier after the assertion {pattern[i:after]!r}")
        if ch == "\\":
            piece, i = _escape(pattern, i, in_class=False)
            out.append(piece)
        elif ch == "[":
            piece, i = _char_class(pattern, i)
            out.append(piece)
        elif ch == ".":
            out.append(f"[^{LINE_TERMINATORS}]")
            i += 1
        elif ch == "$":
            out.append("\\Z")
            i += 1
        elif pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!"):
            out.append("(?P<")  # a named group: (?<name>...)
            i += 3
        else:
            out.append(_unit_escapes(ch))
            i += 1
    return "".join(out)


def _unit_escapes(ch: str) -> str:
    """A literal character as the code units JavaScript sees: astral ones as their pair."""
    if ord(ch) < 0x10000:
        return ch
    return "".join(f"\\u{unit:04x}" for unit in _units(ch))


def _units(text: str) -> memoryview:
    # "utf-16" writes a byte-order mark, then the units in the host's order
    return memoryview(text.encode("utf-16", "surrogatepass")[2:]).cast("H")


def code_units(text: str) -> str:
    """``text`` as JavaScript's RegExp sees it: one Python character per UTF-16 code unit."""
    if text.isascii() or max(text) < "\U00010000":
        return text
    return "".join(map(chr, _units(text)))


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """One escape sequence starting at ``pattern[i] == "\\"``: (Python text, next index)."""
    if i + 1 >= len(pattern):
        raise Untranslatable("a pattern cannot end with a backslash")
    ch = pattern[i + 1]
    if in_class and ch in _CLASS_ESCAPES:
        return _CLASS_ESCAPES[ch], i + 2
    if in_class and ch in "DWS":
        raise Untranslatable(f"\\{ch} inside a character class has no Python equivalent here")
    if in_class and ch == "b":
        return "\\x08", i + 2  # a backspace inside a class
    if not in_class and ch in _OUTSIDE:
        return _OUTSIDE[ch], i + 2
    if ch in _CONTROL:
        return _CONTROL[ch], i + 2
    if ch == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", pattern[i + 2 : i + 4]):
        return pattern[i : i + 4], i + 4
    if ch == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", pattern[i + 2 : i + 6]):
        return pattern[i : i + 6], i + 6
    if ch == "c" and re.fullmatch(r"[A-Za-z]", pattern[i + 2 : i + 3]):
        return f"\\x{ord(pattern[i + 2]) % 32:02x}", i + 3
    if ch == "0" and not pattern[i + 2 : i + 3].isdigit():
        return "\\x00", i + 2
    if ch.isdigit() or ch == "k":
        raise Untranslatable("backreferences are not supported")
    if ch in _SYNTAX or ch == "-":
        return "\\" + ch, i + 2
    return re.escape(ch), i + 2  # an identity escape: the character itself


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    """A class starting at ``pattern[i] == "["``: (Python text, next index)."""
    j = i + 1
    negate = pattern.startswith("^", j)
    if negate:
        j += 1
    if pattern.startswith("]", j):  # [] matches nothing, [^] anything
        return ("[\\s\\S]" if negate else "(?!)"), j + 1
    parts: list[str] = []
    while j < len(pattern) and pattern[j] != "]":
        ch = pattern[j]
        if ch == "\\":
            piece, j = _escape(pattern, j, in_class=True)
            parts.append(piece)
        elif ch in "[&~|":  # literal in JS; Python warns or may give them set meaning
            parts.append("\\" + ch)
            j += 1
        else:
            parts.append(_unit_escapes(ch))
            j += 1
    if j >= len(pattern):
        raise Untranslatable("an unterminated character class")
    return "[" + ("^" if negate else "") + "".join(parts) + "]", j + 1


def compile_js(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """``new RegExp(pattern, ignore_case ? "i" : "")`` as a Python pattern; raises
    :class:`Untranslatable` or ``re.error`` for what JavaScript or Python would refuse."""
    return re.compile(translate(pattern), re.IGNORECASE if ignore_case else 0)
