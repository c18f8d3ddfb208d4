"""core.jsontext: the encoder made once writes what ``json.dumps`` writes, byte for byte."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.jsontext import compact_encoder

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and the infinities included
    | st.text()  # non-ASCII, lone surrogates, control characters
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def _refuse(value: object) -> Any:
    raise TypeError(f"no {type(value).__name__}")


@given(DOCUMENTS)
def test_it_writes_what_json_dumps_writes(document: Any) -> None:
    expected = json.dumps(document, separators=(",", ":"))
    assert compact_encoder(_refuse, allow_nan=True)(document) == expected


@given(st.sampled_from([math.nan, math.inf, -math.inf]), DOCUMENTS)
def test_non_finite_numbers_are_refused_when_asked(number: float, document: Any) -> None:
    encode = compact_encoder(_refuse, allow_nan=False)
    with pytest.raises(ValueError):
        encode({"x": [document, number]})


def test_what_json_has_no_form_for_goes_to_default() -> None:
    assert (
        compact_encoder(lambda value: sorted(value), allow_nan=True)({"s": {3, 1}}) == '{"s":[1,3]}'
    )
    with pytest.raises(TypeError, match="no bytes"):
        compact_encoder(_refuse, allow_nan=True)([b"raw"])
