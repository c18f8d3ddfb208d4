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
