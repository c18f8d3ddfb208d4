"""The edge's settings: a bad ``COOKIE_KEYS`` part is skipped and reported, never its secret."""

from __future__ import annotations

from edge.config import load, parse_keyring


def test_valid_parts_make_the_keyring_the_first_signing() -> None:
    keyring = parse_keyring(" new:secret-2 , old:secret-1")
    assert keyring is not None
    assert keyring.current == "new"
    assert dict(keyring.keys) == {"new": b"secret-2", "old": b"secret-1"}


def test_bad_parts_are_skipped_and_reported_without_their_secret() -> None:
    problems: list[str] = []
    keyring = parse_keyring("é:hunter2,just-a-secret-value,a.b:other,k1:good", problems)
    assert keyring is not None and keyring.current == "k1" and list(keyring.keys) == ["k1"]
    assert len(problems) == 3
    assert "part 1" in problems[0] and "'é'" in problems[0]
    assert "part 2" in problems[1] and "part 3" in problems[2]
    text = " ".join(problems)
    assert "hunter2" not in text and "just-a-secret" not in text and "other" not in text


def test_load_reports_a_keyring_with_no_valid_part() -> None:
    config = load(lambda name: {"COOKIE_KEYS": "é:secret"}.get(name, ""))
    assert config.keyring is None
    assert any("part 1" in p for p in config.problems)
    assert any("COOKIE_KEYS is not set" in p for p in config.problems)
