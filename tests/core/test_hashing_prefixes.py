"""The table ``SeededHash`` starts its second pass from: built digit by digit at import, it
must equal FNV-1a of every three-digit prefix."""

from __future__ import annotations

from core import hashing


def test_the_prefix_table_is_fnv_of_every_three_digit_prefix() -> None:
    table = hashing._digit_prefixes()
    assert len(table) == 1000
    assert all(table[f"{n:03d}".encode()] == hashing.fnv1a32(f"{n:03d}") for n in range(1000))
