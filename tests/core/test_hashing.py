from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.bucketing import bucket_ranges, choose_variation
from core.hashing import digits_hash, fnv1a32, gbhash, seeded_hash, unit_draw


@given(st.text(), st.text(), st.sampled_from([1, 2]))
def test_gbhash_is_a_unit_number(seed: str, value: str, version: int) -> None:
    n = gbhash(seed, value, version)
    assert n is not None and 0.0 <= n < 1.0
    assert gbhash(seed, value, version) == n


@given(st.text(), st.text(), st.integers(min_value=0, max_value=2**31))
def test_unit_draw_is_deterministic_and_in_range(visitor: str, slot: str, epoch: int) -> None:
    u = unit_draw(visitor, slot, epoch)
    assert 0.0 <= u < 1.0
    assert unit_draw(visitor, slot, epoch) == u


def test_unknown_hash_version_is_none() -> None:
    assert gbhash("s", "v", 3) is None


def test_fnv_known_value() -> None:
    # FNV-1a 32 of the empty string is the offset basis; of "a" it is 0xE40C292C (FNV reference)
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C


def _utf16_units(text: str) -> list[int]:
    """UTF-16 code units by the textbook split of a supplementary code point into a pair."""
    units = []
    for ch in text:
        c = ord(ch)
        if c >= 0x10000:
            units += [0xD800 + ((c - 0x10000) >> 10), 0xDC00 + ((c - 0x10000) & 0x3FF)]
        else:
            units.append(c)
    return units


def _reference_fnv(text: str, h: int = 0x811C9DC5) -> int:
    for unit in _utf16_units(text):
        h = ((h ^ unit) * 0x01000193) % 2**32
    return h


@given(st.text(max_size=200), st.integers(0, 2**32 - 1))
def test_fnv_matches_the_textbook_loop(text: str, state: int) -> None:
    assert fnv1a32(text, state) == _reference_fnv(text, state)  # short, long, non-ASCII, emoji


def test_an_emoji_hashes_as_its_surrogate_pair() -> None:
    # what GrowthBook's JS SDK computes: "😀" is the two units 0xD83D 0xDE00
    assert fnv1a32("😀") == _reference_fnv("\ud83d\ude00") != _reference_fnv("x")


@given(st.text(), st.text(max_size=100))
def test_seeded_hash_is_gbhash_v2(seed: str, value: str) -> None:
    assert seeded_hash(seed)(value) == gbhash(seed, value, 2)


@given(st.text(max_size=8), st.text(alphabet="0123456789abcdef", min_size=16, max_size=16))
def test_seeded_hash_is_gbhash_v2_for_visitor_ids(seed: str, value: str) -> None:
    assert seeded_hash(seed)(value) == gbhash(seed, value, 2)


EDGES = [0, 7, 42, 99, 100, 999, 1000, 99_999, 100_000, 999_999_999, 10**9, 10**9 + 1]
EDGES += [4_294_899_999, 4_294_900_000, 2**32 - 1]  # the last five-digit prefix, and 2^32 - 1


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_the_second_pass_is_fnv_of_the_decimal_digits(n: int) -> None:
    assert digits_hash(n) == (_reference_fnv(str(n)) % 10000) / 10000


def test_the_second_pass_at_every_digit_count_and_table_edge() -> None:
    for n in EDGES:
        assert digits_hash(n) == (_reference_fnv(str(n)) % 10000) / 10000, n


def _chi_square(counts: list[int], expected: list[float]) -> float:
    return sum((c - e) ** 2 / e for c, e in zip(counts, expected, strict=True))


# chi-square critical values at p = 0.001: df=9 -> 27.88, df=3 -> 16.27
def test_gbhash_v2_buckets_are_uniform() -> None:
    n = 20_000
    counts = [0] * 10
    for i in range(n):
        counts[int(gbhash("exp-seed", f"visitor-{i}", 2) * 10)] += 1  # type: ignore[operator]
    assert _chi_square(counts, [n / 10] * 10) < 27.88


def test_unit_draw_is_uniform_and_independent_across_slots() -> None:
    n = 20_000
    counts = [0] * 10
    joint = [0] * 4
    for i in range(n):
        a = unit_draw(f"v{i}", "hero", 1)
        b = unit_draw(f"v{i}", "cta", 1)
        counts[int(a * 10)] += 1
        joint[(a < 0.5) * 2 + (b < 0.5)] += 1
    assert _chi_square(counts, [n / 10] * 10) < 27.88
    assert _chi_square(joint, [n / 4] * 4) < 16.27


def test_weighted_bucketing_matches_weights() -> None:
    n = 20_000
    weights = [0.5, 0.3, 0.2]
    ranges = bucket_ranges(3, 1.0, weights)
    counts = [0, 0, 0]
    for i in range(n):
        counts[choose_variation(gbhash("w", f"u{i}", 2) or 0.0, ranges)] += 1
    assert _chi_square(counts, [w * n for w in weights]) < 13.82  # df=2, p=0.001
