"""Operator and learner overrides the origin applies to the site config before compiling.

Retirement is the one override so far: ``{"retired": {"slot": ["variant", ...]}}`` in
``overrides.json`` in the registry directory. The authored config is never edited; the origin
compiles a working copy with those variants' ``status = "retired"``, so an unretire is just
removing the entry.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class Overrides:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.retired: dict[str, list[str]] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: not valid JSON ({exc})") from None
            retired = data.get("retired", {}) if isinstance(data, dict) else None
            if not isinstance(retired, dict) or not all(
                isinstance(v, list) and all(isinstance(x, str) for x in v) for v in retired.values()
            ):
                raise ValueError(f'{path}: expected {{"retired": {{slot: [variant, ...]}}}}')
            self.retired = {k: list(v) for k, v in retired.items()}

    def is_retired(self, slot: str, variant: str) -> bool:
        return variant in self.retired.get(slot, [])

    def retire(self, slot: str, variant: str) -> bool:
        """Mark retired; False when it already was."""
        if self.is_retired(slot, variant):
            return False
        self.retired.setdefault(slot, []).append(variant)
        self.save()
        return True

    def unretire(self, slot: str, variant: str) -> bool:
        """Remove the retirement; False when there was none."""
        if not self.is_retired(slot, variant):
            return False
        self.retired[slot].remove(variant)
        if not self.retired[slot]:
            del self.retired[slot]
        self.save()
        return True

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"retired": self.retired}, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.path)

    def apply(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``config`` with the retired variants' ``status`` set to ``"retired"``."""
        out = copy.deepcopy(dict(config))
        slots = out.get("slots", {})
        for slot, variants in self.retired.items():
            table = slots.get(slot) if isinstance(slots, dict) else None
            if not isinstance(table, dict):
                continue
            for variant in table.get("variants", []):
                if isinstance(variant, dict) and variant.get("id") in variants:
                    variant["status"] = "retired"
        return out
