"""Collecting authoring errors: each with its config path and the bad value, raised once."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from core.packing import MAX_INTEGER, finite

T = TypeVar("T")
MAX_DEPTH = 64  # nesting of tables and arrays in a config or model


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str
    value: Any = None

    def __str__(self) -> str:
        shown = "" if self.value is None else f" (got {self.value!r:.80})"
        return f"{self.path}: {self.message}{shown}"


class ConfigError(ValueError):
    """Everything wrong with an authored config, all at once."""

    def __init__(self, problems: list[Problem], source: str = "") -> None:
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s){where}:\n{lines}")


_MISSING = object()


class Reader:
    """Typed reads from a parsed config that record problems instead of raising."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, message: str, value: Any = None) -> None:
        self.problems.append(Problem(path, message, value))

    def raise_if_any(self, source: str = "") -> None:
        if self.problems:
            raise ConfigError(self.problems, source)

    def known(self, table: Mapping[str, Any], allowed: set[str], path: str) -> None:
        for key in table:
            if key not in allowed:
                self.add(_join(path, key), f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def _get(
        self,
        table: Mapping[str, Any],
        key: str,
        path: str,
        default: Any,
        check: Callable[[Any], bool],
        expected: str,
    ) -> Any:
        value = table.get(key, _MISSING)
        here = _join(path, key)
        if value is _MISSING:
            if default is _MISSING:
                self.add(here, "required")
                return None
            return default
        if not check(value):
            self.add(here, f"expected {expected}", value)
            return None if default is _MISSING else default
        return value

    def string(
        self,
        table: Mapping[str, Any],
        key: str,
        path: str,
        default: Any = _MISSING,
        *,
        empty: bool = False,
    ) -> str:
        value = self._get(table, key, path, default, lambda v: isinstance(v, str), "a string")
        if isinstance(value, str) and not value and not empty and default is _MISSING:
            self.add(_join(path, key), "must not be empty", value)
        return value if isinstance(value, str) else ""

    def number(
        self,
        table: Mapping[str, Any],
        key: str,
        path: str,
        default: Any = _MISSING,
        low: float | None = None,
        high: float | None = None,
    ) -> float:
        value = self._get(table, key, path, default, _is_number, "a number")
        if value is None:
            return 0.0 if default is _MISSING else float(default)
        if (low is not None and value < low) or (high is not None and value > high):
            self.add(_join(path, key), f"must be between {low} and {high}", value)
            return float(default) if default is not _MISSING else float(low or 0.0)
        return float(value)

    def integer(
        self,
        table: Mapping[str, Any],
        key: str,
        path: str,
        default: Any = _MISSING,
        low: int = 0,
        high: int = MAX_INTEGER,
    ) -> int:
        value = self._get(table, key, path, default, lambda v: type(v) is int, "an integer")
        if value is None:
            return 0 if default is _MISSING else int(default)
        if value < low or value > high:
            self.add(_join(path, key), f"must be between {low} and {high}", value)
            return int(default) if default is not _MISSING else low
        return int(value)

    def boolean(self, table: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        return bool(
            self._get(table, key, path, default, lambda v: isinstance(v, bool), "true or false")
        )

    def table(
        self, table: Mapping[str, Any], key: str, path: str, required: bool = False
    ) -> dict[str, Any]:
        default: Any = _MISSING if required else {}
        value = self._get(table, key, path, default, lambda v: isinstance(v, dict), "a table")
        return value if isinstance(value, dict) else {}

    def tables(
        self, table: Mapping[str, Any], key: str, path: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """An array of tables, each with its own path (``slots.hero.variants[2]``)."""
        value = self._get(table, key, path, [], lambda v: isinstance(v, list), "an array of tables")
        out = []
        for i, item in enumerate(value or []):
            here = f"{_join(path, key)}[{i}]"
            if isinstance(item, dict):
                out.append((here, item))
            else:
                self.add(here, "expected a table", item)
        return out

    def strings(
        self, table: Mapping[str, Any], key: str, path: str, default: Any = _MISSING
    ) -> list[str]:
        value = self._get(
            table,
            key,
            path,
            default,
            lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
            "a list of strings",
        )
        return list(value) if isinstance(value, list) else []

    def choice(
        self, table: Mapping[str, Any], key: str, path: str, kind: Callable[[str], T], default: T
    ) -> T:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return default
        try:
            return kind(value)
        except ValueError:
            options = ", ".join(m.value for m in kind)  # type: ignore[attr-defined]
            self.add(_join(path, key), f"must be one of: {options}", value)
            return default


def _is_number(value: Any) -> bool:
    return finite(value)


def unrepresentable(document: Any, path: str) -> list[Problem]:
    """Every value in a parsed config or model that cannot cross a boundary, with its path:
    NaN and infinities, integers beyond +-2^53, and TOML dates and times (no JSON equivalent)."""
    found: list[Problem] = []
    stack: list[tuple[Any, str, int]] = [(document, path, 0)]
    while stack:
        value, here, depth = stack.pop()
        if depth > MAX_DEPTH:
            found.append(Problem(here, f"nested deeper than {MAX_DEPTH} levels"))
        elif isinstance(value, Mapping):
            stack += [(v, _join(here, str(k)), depth + 1) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(v, f"{here}[{i}]", depth + 1) for i, v in enumerate(value)]
        elif isinstance(value, bool | str) or value is None:
            continue
        elif isinstance(value, int | float):
            if not finite(value):
                found.append(Problem(here, "expected a finite number (|integers| <= 2^53)", value))
        elif isinstance(value, datetime.date | datetime.time):
            found.append(
                Problem(here, "a date or time has no JSON form: write it as a string", str(value))
            )
        else:
            found.append(Problem(here, "unsupported value", type(value).__name__))
    return sorted(found, key=lambda p: p.path)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
