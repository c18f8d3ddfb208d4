"""Base64url and short HMAC-SHA256 tags: the pieces every signed token here is made of.

The cookie, preview tokens and identity tokens are ``<parts>.<tag>`` with unpadded base64url
parts and ``tag = base64url(HMAC-SHA256(key, "<parts>")[:16])`` (RFC 2104; 128-bit tags).
"""

from __future__ import annotations

import base64
import hmac
from hashlib import sha256

TAG_BYTES = 16


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Raises ``binascii.Error`` / ``ValueError`` for text that is not base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_KEYED: dict[bytes, hmac.HMAC] = {}  # an HMAC keyed once per key (a few per site), copied per use
_MAX_KEYED = 64


def mac(key: bytes, message: bytes) -> hmac.HMAC:
    """``HMAC-SHA256(key, message)``, from a copy of the keyed state kept per key (RFC 2104's
    key padding and inner/outer set-up done once per key, not per message)."""
    keyed = _KEYED.get(key)
    if keyed is None:
        if len(_KEYED) >= _MAX_KEYED:
            _KEYED.clear()
        keyed = _KEYED[key] = hmac.new(key, digestmod=sha256)
    state = keyed.copy()
    state.update(message)
    return state


def tag(key: bytes, signed: str) -> str:
    """The base64url tag of ``signed`` (ASCII) under ``key``."""
    return b64encode(mac(key, signed.encode("ascii")).digest()[:TAG_BYTES])


def valid(key: bytes, signed: str, given: str) -> bool:
    """Whether ``given`` is ``signed``'s tag; constant time, never raises on odd input."""
    if not signed.isascii():
        return False
    return hmac.compare_digest(tag(key, signed).encode(), given.encode("utf-8", "replace"))
