"""A site config (a parsed TOML document) written back as TOML, for ``edgepick pull``.

``tomllib.loads(dumps(config)) == config`` for every document ``tomllib`` can produce without
dates (the compiler refuses dates anyway): tables become ``[sections]``, arrays of tables
``[[sections]]``, and conditions, scores and anything nested inside an array inline tables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

BARE = re.compile(r"^[A-Za-z0-9_-]+$")
INLINE = {"condition", "scores", "affinity", "context"}  # short or deep: read best on one line


def key(name: str) -> str:
    return name if BARE.fullmatch(name) else _string(name)


def _string(value: str) -> str:
    # JSON escapes are TOML basic-string escapes; TOML also wants DEL escaped
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007F")


def value(item: Any) -> str:
    """One value in TOML's inline syntax."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        return repr(item)
    if isinstance(item, str):
        return _string(item)
    if isinstance(item, list):
        return "[" + ", ".join(value(v) for v in item) + "]"
    if isinstance(item, Mapping):
        return "{ " + ", ".join(f"{key(str(k))} = {value(v)}" for k, v in item.items()) + " }"
    raise TypeError(f"no TOML form for {type(item).__name__}")


def _is_tables(item: Any) -> bool:
    return isinstance(item, list) and bool(item) and all(isinstance(v, Mapping) for v in item)


def _section(path: list[str], table: Mapping[str, Any], out: list[str], header: str) -> None:
    if header:
        out += ["", header]
    nested: list[tuple[str, Any]] = []
    for name, item in table.items():
        if (isinstance(item, Mapping) and name not in INLINE) or _is_tables(item):
            nested.append((name, item))
        else:
            out.append(f"{key(name)} = {value(item)}")
    for name, item in nested:
        here = [*path, key(name)]
        if isinstance(item, Mapping):
            _section(here, item, out, f"[{'.'.join(here)}]")
        else:
            for entry in item:  # anything nested in an entry goes inline
                out += ["", f"[[{'.'.join(here)}]]"]
                out += [f"{key(str(k))} = {value(v)}" for k, v in entry.items()]


def dumps(config: Mapping[str, Any], comment: str = "") -> str:
    """The document as TOML text, with ``comment`` lines on top."""
    out = [f"# {line}" if line else "#" for line in comment.splitlines()]
    _section([], config, out, "")
    text = "\n".join(out).lstrip("\n")
    return text + "\n"
