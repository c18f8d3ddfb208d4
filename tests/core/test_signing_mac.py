"""Tags from the per-key HMAC state equal a fresh ``hmac.new`` for any key and message."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from core import signing


@given(st.binary(max_size=200), st.text(st.characters(max_codepoint=127), max_size=400))
def test_tags_equal_a_fresh_hmac(key: bytes, message: str) -> None:
    fresh = hmac.new(key, message.encode("ascii"), hashlib.sha256).digest()[: signing.TAG_BYTES]
    assert signing.tag(key, message) == signing.b64encode(fresh)
    assert signing.valid(key, message, signing.tag(key, message))


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_mac_equals_hmac_new_for_any_key_length(key: bytes, message: bytes) -> None:
    """Keys shorter than, equal to and longer than SHA-256's 64-byte block (hashed first)."""
    assert signing.mac(key, message) == hmac.new(key, message, hashlib.sha256).digest()
