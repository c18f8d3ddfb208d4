"""GrowthBook-compatible hashing, and the uniform draws every decision is derived from.

GrowthBook hashes with 32-bit FNV-1a (Fowler, Noll, Vo; http://www.isthe.com/chongo/tech/comp/fnv/):

    h0 = 2166136261;  h_{i+1} = (h_i XOR c_i) * 16777619  mod 2^32

over the UTF-16 code units c_i of the string, as GrowthBook's JavaScript SDK (the edge runtime)
and its reference implementation do: a character beyond the Basic Multilingual Plane (an emoji)
is two units, its surrogate pair. Version 1 returns ``(fnv(value + seed) mod 1000) / 1000``;
version 2 returns ``(fnv(str(fnv(seed + value))) mod 10000) / 10000`` (the second pass fixes the
poor avalanche of the first). Same visitor and seed -> same bucket as in GrowthBook's JavaScript
SDK for any Unicode id or seed (its Python SDK hashes code points instead, so it puts ids with an
emoji elsewhere; where the two disagree, edgepick follows the JavaScript SDK).
"""

from __future__ import annotations

from collections.abc import Callable
from hashlib import blake2b

_FNV_OFFSET = 0x811C9DC5
_P = 0x01000193  # the FNV-1a prime
_TWO_64 = float(1 << 64)
_UNMASKED_MAX = 64


def fnv1a32(text: str, h: int = _FNV_OFFSET) -> int:
    """32-bit FNV-1a over the string's UTF-16 code units, continuing from state ``h``."""
    # the low 32 bits of a product depend only on the low 32 bits of its factors, so the mask
    # can wait until the end: one arithmetic operation less per character (bounded input only,
    # so the integer stays a few hundred bits)
    data: bytes | memoryview = (
        text.encode("ascii")
        if text.isascii()  # "utf-16" writes a byte-order mark, then units in the host's order
        else memoryview(text.encode("utf-16", "surrogatepass")[2:]).cast("H")
    )
    if len(data) > _UNMASKED_MAX:
        for code in data:
            h = ((h ^ code) * _P) & 0xFFFFFFFF
        return h
    for code in data:
        h = (h ^ code) * _P
    return h & 0xFFFFFFFF


def gbhash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's versioned hash in [0, 1); ``None`` for an unknown version."""
    if version == 2:  # the second pass from tables (digits_hash; tested against the formula)
        return digits_hash(fnv1a32(seed + value))
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


_P2 = _P * _P & 0xFFFFFFFF  # two FNV steps' multiplier
_TEN_DIGITS = 1_000_000_000  # 32-bit numbers from here on have ten decimal digits
_FIVES_FROM = 10_000  # the first five digits of a ten-digit 32-bit number: 10000 .. 42949
_FIVES_TO = (1 << 32) // 100_000


def _digit_prefixes() -> dict[bytes, int]:
    """The FNV state after each three-digit prefix (the second pass starts from the offset),
    built digit by digit (1,110 steps)."""
    table: dict[bytes, int] = {}
    digits = b"0123456789"
    for a in digits:
        ha = ((_FNV_OFFSET ^ a) * _P) & 0xFFFFFFFF
        for b in digits:
            hb = ((ha ^ b) * _P) & 0xFFFFFFFF
            for c in digits:
                table[bytes((a, b, c))] = ((hb ^ c) * _P) & 0xFFFFFFFF
    return table


def _five_digit_prefixes(threes: dict[bytes, int]) -> list[int]:
    """The FNV state after the first five digits of a ten-digit 32-bit number ``n``, at index
    ``n // 100000 - 10000``: from its first three digits' state, two steps on (36,300 steps)."""
    table = []
    for three in range(_FIVES_FROM // 100, _FIVES_TO // 100 + 1):
        h3 = threes[b"%d" % three]
        for fourth in range(10):
            h4 = ((h3 ^ (48 + fourth)) * _P) & 0xFFFFFFFF
            for fifth in range(10):
                if _FIVES_FROM <= three * 100 + fourth * 10 + fifth <= _FIVES_TO:
                    table.append(((h4 ^ (48 + fifth)) * _P) & 0xFFFFFFFF)
    return table


def _digit_pairs() -> tuple[tuple[int, ...], ...]:
    """Two FNV steps over two decimal digits at once: ``[L][dd]``, for a state ``h`` whose low
    byte is ``L`` and the digits of ``dd`` (00 .. 99), is ``A`` with ``h2 = h * P^2 + A`` (mod
    2^32).

    Why it depends on the low byte alone: ``h ^ c = h + d`` with ``d = (L ^ c) - L`` (a
    character below 256 changes the low byte only), so ``h1 = h * P + d * P``; the low byte of
    ``h1`` is ``((L ^ c) * P) mod 256``, so the second step's ``d'`` too depends on ``L`` and the
    characters alone, and ``h2 = h * P^2 + d * P^2 + d' * P`` (FNV: Fowler, Noll, Vo,
    http://www.isthe.com/chongo/tech/comp/fnv/)."""
    rows = []
    for low in range(256):
        row = []
        for pair in range(100):
            first, second = 48 + pair // 10, 48 + pair % 10
            d1 = (low ^ first) - low
            low1 = ((low ^ first) * _P) & 0xFF
            d2 = (low1 ^ second) - low1
            row.append((d1 * _P2 + d2 * _P) & 0xFFFFFFFF)
        rows.append(tuple(row))
    return tuple(rows)


# made at import: in a worker, the runtime's memory snapshot of the imported code holds them
_PREFIXES: dict[bytes, int] = _digit_prefixes()
_FIVES: list[int] = _five_digit_prefixes(_PREFIXES)
_PAIRS: tuple[tuple[int, ...], ...] = _digit_pairs()


def digits_hash(n: int) -> float:
    """GrowthBook's second pass (version 2): ``(fnv1a32(str(n)) mod 10000) / 10000`` for a
    32-bit ``n``, from tables: a ten-digit ``n`` (three in four) starts from its first five
    digits' state (``_FIVES``), then takes two digits at a time (``_PAIRS``) and the last one;
    a shorter one starts from its first three digits' state (``_PREFIXES``)."""
    if n >= _TEN_DIGITS:
        g = _FIVES[n // 100_000 - _FIVES_FROM]
        rest = n % 100_000
        g = g * _P2 + _PAIRS[g & 0xFF][rest // 1000]
        g = g * _P2 + _PAIRS[g & 0xFF][rest // 10 % 100]
        g = (g ^ (48 + rest % 10)) * _P
    else:
        digits = b"%d" % n
        known = _PREFIXES.get(digits[:3])  # None below 100 (fewer than three digits)
        if known is None:
            g, rest_digits = _FNV_OFFSET, digits
        else:
            g, rest_digits = known, digits[3:]
        for digit in rest_digits:  # at most 6 more
            g = (g ^ digit) * _P
    return ((g & 0xFFFFFFFF) % 10000) / 10000


def seeded_hash(seed: str) -> Callable[[str], float]:
    """``gbhash(seed, value, 2)`` as a function of ``value``, the seed's FNV state computed once
    (FNV-1a is a stream)."""
    state = fnv1a32(seed)

    def draw(value: str) -> float:
        if value.isascii() and len(value) <= _UNMASKED_MAX:  # fnv1a32, inlined for ids
            h = state
            for code in value.encode("ascii"):
                h = (h ^ code) * _P
            return digits_hash(h & 0xFFFFFFFF)
        return digits_hash(fnv1a32(value, state))

    return draw


def unit_draw(visitor_id: str, slot: str, epoch: int) -> float:
    """A uniform number in [0, 1) derived from (visitor, slot, snapshot epoch), 2^-64 resolution.

    Learned policies draw with this rather than ``gbhash`` because its resolution (2^-64 versus
    10^-4) honours small exploration probabilities exactly. BLAKE2b (RFC 7693) is in hashlib on
    CPython and Pyodide alike.
    """
    digest = blake2b(f"{visitor_id}\x1f{slot}\x1f{epoch}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _TWO_64


def short_id(text: str) -> str:
    """A 16-hex-digit identifier derived from ``text`` (decision ids, persona visitor ids)."""
    return blake2b(text.encode(), digest_size=8).hexdigest()
