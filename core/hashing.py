"""GrowthBook-compatible hashing, and the uniform draws every decision is derived from.

GrowthBook hashes with 32-bit FNV-1a (Fowler, Noll, Vo; http://www.isthe.com/chongo/tech/comp/fnv/):

    h0 = 2166136261;  h_{i+1} = (h_i XOR c_i) * 16777619  mod 2^32

over the code points c_i of the string. Version 1 returns ``(fnv(value + seed) mod 1000) / 1000``;
version 2 returns ``(fnv(str(fnv(seed + value))) mod 10000) / 10000`` (the second pass fixes the
poor avalanche of the first). Same visitor and seed -> same bucket as in every GrowthBook SDK.
"""

from __future__ import annotations

from hashlib import blake2b

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK32 = 0xFFFFFFFF
_TWO_64 = float(1 << 64)


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over the string's code points."""
    h = _FNV_OFFSET
    for ch in text:
        h = ((h ^ ord(ch)) * _FNV_PRIME) & _MASK32
    return h


def gbhash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's versioned hash in [0, 1); ``None`` for an unknown version."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def unit_draw(visitor_id: str, slot: str, epoch: int) -> float:
    """A uniform number in [0, 1) derived from (visitor, slot, snapshot epoch), 2^-64 resolution.

    Learned policies draw with this rather than ``gbhash`` because its resolution (2^-64 versus
    10^-4) honours small exploration probabilities exactly. BLAKE2b (RFC 7693) is in hashlib on
    CPython and Pyodide alike.
    """
    digest = blake2b(f"{visitor_id}\x1f{slot}\x1f{epoch}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _TWO_64


def short_id(*parts: str) -> str:
    """A 16-hex-digit identifier derived from its parts (decision ids, visitor ids in tests)."""
    return blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()
