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

from hashlib import blake2b

_FNV_OFFSET = 0x811C9DC5
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
            h = ((h ^ code) * 0x01000193) & 0xFFFFFFFF
        return h
    for code in data:
        h = (h ^ code) * 0x01000193
    return h & 0xFFFFFFFF


def gbhash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's versioned hash in [0, 1); ``None`` for an unknown version."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def _digit_prefixes() -> dict[bytes, int]:
    """The FNV state after each three-digit prefix (the second pass starts from the offset),
    built digit by digit (1,110 steps)."""
    table: dict[bytes, int] = {}
    digits = b"0123456789"
    for a in digits:
        ha = ((_FNV_OFFSET ^ a) * 0x01000193) & 0xFFFFFFFF
        for b in digits:
            hb = ((ha ^ b) * 0x01000193) & 0xFFFFFFFF
            for c in digits:
                table[bytes((a, b, c))] = ((hb ^ c) * 0x01000193) & 0xFFFFFFFF
    return table


# made at import: in a worker, the runtime's memory snapshot of the imported code holds it
_PREFIXES: dict[bytes, int] = _digit_prefixes()


class SeededHash:
    """``gbhash(seed, value, 2)`` with the seed's FNV state computed once (FNV-1a is a stream).

    The second pass hashes the first's decimal digits from the offset basis, so its state after
    the first three digits comes from a table of 1,000 (built once, at import).
    """

    __slots__ = ("prefixes", "state")

    def __init__(self, seed: str) -> None:
        self.state = fnv1a32(seed)
        self.prefixes = _PREFIXES

    def __call__(self, value: str) -> float:
        if value.isascii() and len(value) <= _UNMASKED_MAX:  # fnv1a32, inlined for ids
            h = self.state
            for code in value.encode("ascii"):
                h = (h ^ code) * 0x01000193
            digits = b"%d" % (h & 0xFFFFFFFF)
        else:
            digits = b"%d" % fnv1a32(value, self.state)
        known = self.prefixes.get(digits[:3])  # None below 100 (fewer than three digits)
        if known is None:
            g, rest = _FNV_OFFSET, digits
        else:
            g, rest = known, digits[3:]
        for digit in rest:  # at most 7 more (2^32 has 10 digits)
            g = (g ^ digit) * 0x01000193
        return ((g & 0xFFFFFFFF) % 10000) / 10000


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
