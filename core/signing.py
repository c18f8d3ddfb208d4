"""Base64url and short HMAC-SHA256 tags: the pieces every signed token here is made of.

The cookie, preview tokens and identity tokens are ``<parts>.<tag>`` with unpadded base64url
parts and ``tag = base64url(HMAC-SHA256(key, "<parts>")[:16])`` (RFC 2104; 128-bit tags).
"""

from __future__ import annotations

import base64
import hmac
from hashlib import sha256
from typing import Any

TAG_BYTES = 16


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Raises ``binascii.Error`` / ``ValueError`` for text that is not base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_BLOCK = 64  # SHA-256's block size in bytes
_IPAD = bytes(b ^ 0x36 for b in range(256))  # translate tables: K' xor ipad, K' xor opad
_OPAD = bytes(b ^ 0x5C for b in range(256))
_KEYED: dict[bytes, tuple[Any, Any]] = {}  # key -> hash states after its padded key block
_MAX_KEYED = 64


def mac(key: bytes, message: bytes) -> bytes:
    """``HMAC-SHA256(key, message) = H((K' ^ opad) || H((K' ^ ipad) || message))`` (RFC 2104,
    section 2; ``K'`` the key zero-padded to the 64-byte block, hashed first if longer).

    The two hash states after their key block are made once per key and copied per message:
    ``hmac.HMAC.copy`` does the same through Python-level calls, and Pyodide has no OpenSSL
    ``_hashlib`` for ``hmac.digest``'s one-shot path (tests/core/test_signing_mac.py checks
    equality with ``hmac.new`` for any key and message)."""
    keyed = _KEYED.get(key)
    if keyed is None:
        if len(_KEYED) >= _MAX_KEYED:
            _KEYED.clear()
        block = (sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
        keyed = _KEYED[key] = (sha256(block.translate(_IPAD)), sha256(block.translate(_OPAD)))
    inner = keyed[0].copy()
    inner.update(message)
    outer = keyed[1].copy()
    outer.update(inner.digest())
    return outer.digest()


def tag(key: bytes, signed: str) -> str:
    """The base64url tag of ``signed`` (ASCII) under ``key``."""
    return b64encode(mac(key, signed.encode("ascii"))[:TAG_BYTES])


def valid(key: bytes, signed: str, given: str) -> bool:
    """Whether ``given`` is ``signed``'s tag; constant time, never raises on odd input."""
    if not signed.isascii():
        return False
    return hmac.compare_digest(tag(key, signed).encode(), given.encode("utf-8", "replace"))
