"""msgpack, typed: the one place the core packs and unpacks bytes."""

from __future__ import annotations

import math
from typing import Any

import msgpack

MAX_INTEGER = 2**53  # integers beyond this lose precision as floats (JSON, JavaScript, SQLite)


def finite(value: Any) -> bool:
    """A number every boundary can carry: a finite float, or an integer within +-2^53 (a bigger
    one is inexact as a float and overflows ``math.isfinite`` and SQLite); not a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):
        return -MAX_INTEGER <= value <= MAX_INTEGER
    return math.isfinite(value)


def pack(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def unpack(data: bytes) -> Any:
    """Unpack one msgpack document; raises whatever msgpack raises for invalid bytes."""
    return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
