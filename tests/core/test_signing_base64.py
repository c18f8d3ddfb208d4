"""``core.signing``'s base64url equals the standard library's for any bytes, and decodes any text
as ``base64.urlsafe_b64decode`` does (the same bytes, or an error where it errs)."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from core import signing


@given(st.binary(max_size=600))
def test_encoding_is_unpadded_urlsafe_base64(data: bytes) -> None:
    text = signing.b64encode(data)
    assert text == base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert signing.b64decode(text) == data


@given(st.one_of(st.text(max_size=80), st.text(alphabet="AZaz09-_+/=.", max_size=80)))
def test_decoding_any_text_matches_the_standard_library(text: str) -> None:
    try:
        expected: bytes | type[Exception] = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:  # binascii.Error is one
        expected = ValueError
    try:
        got: bytes | type[Exception] = signing.b64decode(text)
    except ValueError:
        got = ValueError
    assert got == expected
