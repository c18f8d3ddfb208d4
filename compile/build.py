"""Config file (+ model) -> snapshot bytes, the one entry the CLI and the origin share."""

from __future__ import annotations

from pathlib import Path

from compile.site import compile_site, load_model, load_toml
from core.snapshot import encode_snapshot


def build_snapshot(
    config: Path,
    model: Path | None = None,
    *,
    parent: str = "",
    author: str = "",
    message: str = "",
    created: int = 0,
) -> bytes:
    site = compile_site(load_toml(config), load_model(model) if model else None, str(config))
    return encode_snapshot(site, parent=parent, created=created, author=author, message=message)
