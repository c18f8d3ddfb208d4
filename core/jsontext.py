"""Compact JSON text (no whitespace, ASCII only), with its encoder made once.

``json.dumps(value, separators=(",", ":"))`` builds a ``JSONEncoder`` and a new C encoder on
every call, which costs more than encoding a cookie or an event batch under Pyodide. Where the
C encoder exists (CPython and Pyodide) it is built here once and called directly; its output is
``json.dumps``' with those separators, byte for byte (tests/core/test_jsontext.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def compact_encoder(default: Callable[[Any], Any], allow_nan: bool) -> Callable[[Any], str]:
    """A function writing a value as compact JSON. ``default`` is called for what JSON has no
    form for (and raises, or returns something JSON can write); ``allow_nan``: write ``NaN``,
    ``Infinity`` and ``-Infinity`` as ``json.dumps`` does (JSON has no such numbers; else they
    are refused with ``ValueError``). No cycle check (it would cost a dict operation per list
    and dict): a document that holds itself raises ``RecursionError``."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - a Python without the _json accelerator
        encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=allow_nan, default=default)
        return encoder.encode
    ascii_string = json.encoder.encode_basestring_ascii
    chunks = make(None, default, ascii_string, None, ":", ",", False, False, allow_nan)
    return lambda document: "".join(chunks(document, 0))
