"""Base64url and short MAC tags: the pieces every signed token here is made of.

Preview and identity tokens (and the cookie's ``v1``/``v2``) are ``<parts>.<tag>`` with unpadded
base64url parts and ``tag = base64url(HMAC-SHA256(key, "<parts>")[:16])`` (RFC 2104; 128-bit
tags). The cookie's ``v3`` tag is keyed BLAKE2b (``keyed_tag``): one hash call instead of two.
"""

from __future__ import annotations

import hmac
from binascii import a2b_base64, b2a_base64
from hashlib import blake2b, sha256
from typing import Any

TAG_BYTES = 16
# base64url (RFC 4648, section 5) is base64 with "-_" for "+/": binascii's C codec and a byte
# translation, without the ``base64`` module's three Python-level calls per value
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def b64encode(data: bytes) -> str:
    """Unpadded base64url (``base64.urlsafe_b64encode`` without its ``=``)."""
    return b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """``base64.urlsafe_b64decode`` of unpadded text (characters outside the alphabet skipped as
    it does); raises ``binascii.Error`` / ``ValueError`` for text that is not base64url."""
    return a2b_base64(text.encode("ascii").translate(_FROM_URLSAFE) + b"=" * (-len(text) % 4))


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


_SUBKEYS: dict[tuple[bytes, bytes], bytes] = {}  # (key, purpose) -> derived BLAKE2b key


def keyed_tag(key: bytes, purpose: bytes, signed: str) -> str:
    """``base64url(BLAKE2b-128(K_p, signed))`` in BLAKE2b's keyed mode ("directly keyed, making it
    functionally equivalent to a MAC": RFC 7693's abstract; Aumasson et al., "BLAKE2: simpler,
    smaller, fast as MD5", ACNS 2013), with the subkey
    ``K_p = BLAKE2b-256(key, person=purpose)``: a key of any length (keyed mode takes at most
    64 bytes) and a different key per purpose, so a tag made for one kind of token never
    verifies as another's (``purpose`` at most 16 bytes). One C call per tag where HMAC-SHA256
    takes two hashes and two state copies (tests/core/test_signing_keyed.py)."""
    subkey = _SUBKEYS.get((key, purpose))
    if subkey is None:
        if len(_SUBKEYS) >= _MAX_KEYED:
            _SUBKEYS.clear()
        subkey = _SUBKEYS[key, purpose] = blake2b(key, digest_size=32, person=purpose).digest()
    digest = blake2b(signed.encode("ascii"), key=subkey, digest_size=TAG_BYTES).digest()
    return b64encode(digest)


def keyed_valid(key: bytes, purpose: bytes, signed: str, given: str) -> bool:
    """Whether ``given`` is ``keyed_tag(key, purpose, signed)``; constant time, never raises."""
    if not (signed.isascii() and given.isascii()):  # compare_digest takes ASCII text only
        return False
    return hmac.compare_digest(keyed_tag(key, purpose, signed), given)
