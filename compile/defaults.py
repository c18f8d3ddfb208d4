"""Where the embedded defaults live: the sample site, model, personas, pages and store.

In a checkout they are the repository's ``fixtures/`` folder; an installed wheel carries the
same files as the package ``compile.sample`` (``pyproject.toml`` maps ``fixtures/`` onto it),
so ``edgepick explain``, ``edgepick compile`` and the demo find them either way.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def folder() -> Path:
    """The folder holding ``site.toml``, ``model.json``, ``personas.toml`` and ``pages/``."""
    checkout = _HERE.parent / "fixtures"
    return checkout if (checkout / "site.toml").is_file() else _HERE / "sample"


def path(name: str) -> Path:
    """One default file, e.g. ``path("personas.toml")``."""
    return folder() / name


SCHEMA = _HERE / "config.schema.json"  # the site config's JSON Schema (``edgepick schema``)
