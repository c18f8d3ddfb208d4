"""JavaScript's value semantics on JSON values, as GrowthBook's JS SDK applies them to targeting.

GrowthBook's conditions are evaluated at the edge by its JavaScript SDK in a JS worker; to put
every visitor in the same audience, edgepick evaluates them with the same coercions. JSON values
map as: ``None`` <-> ``null``, ``bool``, ``int``/``float`` <-> number, ``str``, ``list`` <->
array, ``dict`` <-> object. Each function names the ECMAScript operation it follows (ECMA-262,
14th edition): ToString, ToNumber, ToBoolean, IsStrictlyEqual, IsLessThan, JSON.stringify.

Strings compare by UTF-16 code units in JavaScript, not by code points: ``utf16`` gives the
key that orders like JavaScript (big-endian UTF-16 bytes compare as the code units do).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

NAN = math.nan
_MAX_INDEX = 2**32 - 2  # the largest array index (ECMA-262 6.1.7)


def number_string(x: float | int) -> str:
    """Number::toString(x) (ECMA-262 6.1.6.1.20): the shortest round-trip digits, written in
    plain notation for decimal exponents -7 < n <= 21 and as ``d.ddde+n`` outside."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    text = repr(abs(x))  # Python's repr is the shortest round-trip decimal, as JS requires
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    n = len(whole) + int(exponent or 0) - (len(whole + fraction) - len(digits))
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        body = (
            digits[0] + ("." + digits[1:] if k > 1 else "") + f"e{'+' if e >= 0 else '-'}{abs(e)}"
        )
    return sign + body


def to_string(value: Any) -> str:
    """ToString (ECMA-262 7.1.17): ``null`` -> "null", arrays joined with "," (null elements
    empty), objects "[object Object]"."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_string(value)
    if isinstance(value, list | tuple):
        return ",".join("" if item is None else to_string(item) for item in value)
    return "[object Object]"


# StringToNumber (ECMA-262 7.1.4.1.1): StrWhiteSpaceChar is WhiteSpace or LineTerminator
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_DECIMAL = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|Infinity)")
_RADIX = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")
_TRIM = re.compile(f"^[{_JS_SPACE}]+|[{_JS_SPACE}]+$")


def string_to_number(text: str) -> float:
    """StringToNumber: decimal, ``Infinity`` and 0x/0o/0b literals after trimming; "" is 0."""
    text = _TRIM.sub("", text)
    if not text:
        return 0.0
    if _DECIMAL.fullmatch(text):
        return float(text.replace("Infinity", "inf"))
    if _RADIX.fullmatch(text):
        return float(int(text[2:], {"x": 16, "o": 8, "b": 2}[text[1].lower()]))
    return NAN


def to_number(value: Any) -> float:
    """ToNumber (ECMA-262 7.1.4), with ToPrimitive for arrays and objects."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if value is None:
        return 0.0
    if isinstance(value, str):
        return string_to_number(value)
    if isinstance(value, list | tuple):
        return string_to_number(to_string(value))
    return NAN


def truthy(value: Any) -> bool:
    """ToBoolean (ECMA-262 7.1.2): false, 0, NaN, "" and null are false; arrays and objects
    (even empty) are true."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == value and value != 0
    if isinstance(value, str):
        return value != ""
    return True


def strictly_equal(a: Any, b: Any) -> bool:
    """IsStrictlyEqual (``===``) between values parsed apart: same type and value; two arrays or
    objects are never the same object, so never equal."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return a is None and b is None


def utf16(text: str) -> bytes:
    """A key that orders strings as JavaScript does (by UTF-16 code units)."""
    return text.encode("utf-16-be", "surrogatepass")


def _primitive(value: Any) -> Any:
    """ToPrimitive with hint number: arrays become their string, objects "[object Object]"."""
    if isinstance(value, list | tuple | Mapping):
        return to_string(value)
    return value


def less_than(a: Any, b: Any) -> bool | None:
    """IsLessThan(a, b) (ECMA-262 7.2.13): True, False, or None for "undefined" (a NaN)."""
    pa, pb = _primitive(a), _primitive(b)
    if isinstance(pa, str) and isinstance(pb, str):
        return utf16(pa) < utf16(pb)
    na, nb = to_number(pa), to_number(pb)
    if na != na or nb != nb:
        return None
    return na < nb


def compare(op: str, a: Any, b: Any) -> bool:
    """``a < b``, ``a <= b``, ``a > b`` or ``a >= b`` as JavaScript evaluates them."""
    if op == "<":
        return less_than(a, b) is True
    if op == ">":
        return less_than(b, a) is True
    if op == "<=":
        return less_than(b, a) is False
    return less_than(a, b) is False  # ">="


def _index_key(key: str) -> int | None:
    """The array index a property key is (canonical, < 2^32 - 1), or None."""
    if key.isdigit() and key.isascii() and (key == "0" or key[0] != "0"):
        index = int(key)
        return index if index <= _MAX_INDEX else None
    return None


def own_keys(value: Mapping[str, Any]) -> list[str]:
    """OrdinaryOwnPropertyKeys: array-index keys ascending, then the rest in insertion order."""
    keys = [str(k) for k in value]
    indices = sorted((i, k) for k in keys if (i := _index_key(k)) is not None)
    return [k for _, k in indices] + [k for k in keys if _index_key(k) is None]


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f\ud800-\udfff]')


def _quote(text: str) -> str:
    def escape(match: re.Match[str]) -> str:
        ch = match.group()
        return _ESCAPES.get(ch) or f"\\u{ord(ch):04x}"

    return '"' + _NEEDS_ESCAPE.sub(escape, text) + '"'


def stringify(value: Any) -> str:
    """JSON.stringify(value) (ECMA-262 25.5.2): JS number text, objects' keys in JS order,
    no spaces; non-finite numbers are "null"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_string(value) if math.isfinite(float(value)) else "null"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(stringify(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = {str(k): v for k, v in value.items()}
        return "{" + ",".join(f"{_quote(k)}:{stringify(items[k])}" for k in own_keys(items)) + "}"
    return "null"


def has_property(container: Any, key: str) -> bool:
    """``key in container`` for a JSON object or array (own properties only: the prototype's,
    such as ``constructor``, are deliberately not imitated)."""
    if isinstance(container, Mapping):
        return key in container
    if isinstance(container, list | tuple):
        index = _index_key(key)
        return key == "length" or (index is not None and index < len(container))
    return False


def get_property(container: Any, key: str) -> Any:
    if isinstance(container, Mapping):
        return container[key]
    return len(container) if key == "length" else container[int(key)]
