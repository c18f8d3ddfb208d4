"""Profile keys: any user id becomes one flat, valid KV key, distinct per id."""

from __future__ import annotations

import base64
import re

from hypothesis import given
from hypothesis import strategies as st

from core.profile import profile_key

HOSTILE = ["u 1", "..", "../../etc/passwd", "a/b", "a", "a/", "nul\x00id", "é", "", "x" * 300]


@given(st.text(max_size=200))
def test_keys_are_flat_safe_and_reversible(user: str) -> None:
    key = profile_key(user)
    assert re.fullmatch(r"profile/[A-Za-z0-9_-]*", key)
    encoded = key.removeprefix("profile/")
    padded = encoded + "=" * (-len(encoded) % 4)
    assert base64.urlsafe_b64decode(padded).decode("utf-8", "surrogatepass") == user


def test_hostile_ids_give_distinct_keys_none_a_prefix_folder_of_another() -> None:
    keys = [profile_key(u) for u in HOSTILE]
    assert len(set(keys)) == len(keys)
    assert all("/" not in k.removeprefix("profile/") and ".." not in k for k in keys)
    assert all(len(k.encode()) <= 512 for k in keys)  # Workers KV's key limit
