"""The tables GrowthBook's second pass starts from (``core.hashing.digits_hash``), built at
import: each must equal FNV-1a of what it stands for."""

from __future__ import annotations

from core import hashing


def test_the_prefix_table_is_fnv_of_every_three_digit_prefix() -> None:
    table = hashing._digit_prefixes()
    assert len(table) == 1000
    assert all(table[f"{n:03d}".encode()] == hashing.fnv1a32(f"{n:03d}") for n in range(1000))


def test_the_five_digit_table_is_fnv_of_every_prefix_of_a_ten_digit_number() -> None:
    table = hashing._five_digit_prefixes(hashing._digit_prefixes())
    assert len(table) == 42949 - 10000 + 1
    assert all(table[n - 10000] == hashing.fnv1a32(str(n)) for n in range(10000, 42950))


def test_a_pair_of_digits_is_two_fnv_steps_from_any_state() -> None:
    pairs = hashing._digit_pairs()
    for state in (0, 1, 255, 256, 0x811C9DC5, 0xFFFFFFFF, 123_456_789):
        for pair in range(100):
            step = (state * hashing._P2 + pairs[state & 0xFF][pair]) & 0xFFFFFFFF
            assert step == hashing.fnv1a32(f"{pair:02d}", state)
