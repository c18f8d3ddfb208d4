"""msgpack, typed: the one place the core packs and unpacks bytes."""

from __future__ import annotations

from typing import Any

import msgpack


def pack(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def unpack(data: bytes) -> Any:
    """Unpack one msgpack document; raises whatever msgpack raises for invalid bytes."""
    return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
