"""Keyed BLAKE2b tags (the cookie's v3): the documented construction for any key, a different
tag per purpose, key and message, and a verifier that never raises on what a visitor sends."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from core import signing

ASCII = st.text(st.characters(max_codepoint=127), max_size=400)
PURPOSES = st.binary(min_size=1, max_size=16)


@given(st.binary(max_size=300), PURPOSES, ASCII)
def test_a_tag_is_blake2b_128_under_the_purposes_subkey(
    key: bytes, purpose: bytes, text: str
) -> None:
    """Keys shorter and longer than keyed BLAKE2b's 64-byte maximum (the subkey is 32 bytes)."""
    subkey = hashlib.blake2b(key, digest_size=32, person=purpose).digest()
    digest = hashlib.blake2b(text.encode(), key=subkey, digest_size=16).digest()
    tag = signing.keyed_tag(key, purpose, text)
    assert tag == signing.b64encode(digest)
    assert len(tag) == 22
    assert signing.keyed_valid(key, purpose, text, tag)


@given(st.binary(min_size=1, max_size=80), PURPOSES, PURPOSES, ASCII, ASCII)
def test_another_purpose_or_message_does_not_verify(
    key: bytes, purpose: bytes, other: bytes, text: str, changed: str
) -> None:
    tag = signing.keyed_tag(key, purpose, text)
    if other.rstrip(b"\0") != purpose.rstrip(b"\0"):  # BLAKE2's person is zero-padded
        assert not signing.keyed_valid(key, other, text, tag)
    if changed != text:
        assert not signing.keyed_valid(key, purpose, changed, tag)
    assert not signing.keyed_valid(key + b"x", purpose, text, tag)
    assert not signing.keyed_valid(key, purpose, text, signing.tag(key, text))  # HMAC's


@given(st.text(max_size=60), st.text(max_size=60))
def test_the_verifier_never_raises_on_odd_input(text: str, given_tag: str) -> None:
    """Non-ASCII messages and tags (a visitor's cookie can hold anything) are simply invalid."""
    valid = signing.keyed_valid(b"key", b"edgepick-cookie", text, given_tag)
    assert valid == (
        text.isascii() and given_tag == signing.keyed_tag(b"key", b"edgepick-cookie", text)
    )


def test_the_subkey_cache_is_bounded_and_stays_correct() -> None:
    text = "v3.k.payload"
    first = signing.keyed_tag(b"key-0", b"p", text)
    for i in range(signing._MAX_KEYED * 3):  # a long-lived process seeing many keys
        signing.keyed_tag(f"key-{i}".encode(), b"p", text)
    assert len(signing._SUBKEYS) <= signing._MAX_KEYED
    assert signing.keyed_tag(b"key-0", b"p", text) == first
