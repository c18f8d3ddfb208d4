"""Operator and learner overrides the origin applies before compiling and publishing.

``overrides.json`` in the registry directory holds:

* ``retired``: ``{"slot": ["variant", ...]}``, the learner's retirements. The authored config is
  never edited; the origin compiles a working copy with those variants' ``status = "retired"``.
* ``holds``: what an operator decided, kept until the operator lifts it (``edgepick resume``):
  ``pin`` (a rollback or ``edgepick pin``: sync rounds still learn but publish nothing),
  ``paused`` slots (their learned numbers stay as last published), and ``kept`` variants
  (``edgepick unretire``: the learner may not retire them again). Each hold records who, when
  and why; the registry's audit log has every change.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

Hold = dict[str, Any]  # {"by": author, "at": unix seconds, "reason": text, ...}


class Overrides:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.retired: dict[str, list[str]] = {}
        self.pin: Hold | None = None
        self.paused: dict[str, Hold] = {}
        self.kept: dict[str, dict[str, Hold]] = {}
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
            holds = data.get("holds", {})
            if not isinstance(holds, dict):
                raise ValueError(f'{path}: "holds" must be an object')
            pin, paused, kept = holds.get("pin"), holds.get("paused", {}), holds.get("kept", {})
            if (pin is not None and not isinstance(pin, dict)) or not isinstance(paused, dict):
                raise ValueError(f'{path}: "holds.pin" and "holds.paused" must be objects')
            if not isinstance(kept, dict) or not all(isinstance(v, dict) for v in kept.values()):
                raise ValueError(f'{path}: "holds.kept" must be {{slot: {{variant: hold}}}}')
            self.pin, self.paused, self.kept = (
                pin,
                dict(paused),
                {k: dict(v) for k, v in kept.items()},
            )

    # ------------------------------------------------------------ operator holds

    @staticmethod
    def _hold(author: str, reason: str, **extra: Any) -> Hold:
        return {"by": author, "at": int(time.time()), "reason": reason, **extra}

    def set_pin(self, snapshot: str, author: str, reason: str) -> None:
        self.pin = self._hold(author, reason, snapshot=snapshot)
        self.save()

    def pause(self, slot: str, author: str, reason: str) -> None:
        self.paused[slot] = self._hold(author, reason)
        self.save()

    def keep(self, slot: str, variant: str, author: str, reason: str) -> None:
        self.kept.setdefault(slot, {})[variant] = self._hold(author, reason)
        self.save()

    def is_kept(self, slot: str, variant: str) -> bool:
        return variant in self.kept.get(slot, {})

    def resume(
        self, *, pin: bool = False, slot: str | None = None, variant: str | None = None
    ) -> list[str]:
        """Lift holds: the pin, a slot's pause (or a kept variant of it), or everything when
        nothing is named; returns what was lifted, in words."""
        lifted: list[str] = []
        everything = not pin and slot is None
        if (pin or everything) and self.pin is not None:
            lifted.append(f"pin on {self.pin.get('snapshot')}")
            self.pin = None
        for name in list(self.paused):
            if everything or (name == slot and variant is None):
                del self.paused[name]
                lifted.append(f"pause of slot {name}")
        for name in list(self.kept):
            for vid in list(self.kept[name]):
                if everything or (name == slot and variant in (None, vid)):
                    del self.kept[name][vid]
                    lifted.append(f"keep of {name}/{vid} (the learner may retire it again)")
            if not self.kept[name]:
                del self.kept[name]
        if lifted:
            self.save()
        return lifted

    def holds(self) -> list[str]:
        """The holds in force, one line each."""
        lines = []
        if self.pin is not None:
            lines.append(
                f"pinned to {self.pin.get('snapshot')}{_by(self.pin)}: sync publishes nothing"
            )
        lines += [
            f"slot {s} paused{_by(h)}: its learned numbers stay" for s, h in self.paused.items()
        ]
        for slot, variants in self.kept.items():
            lines += [f"{slot}/{v} kept{_by(h)}: never retired" for v, h in variants.items()]
        return lines

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
        holds: dict[str, Any] = {"paused": self.paused, "kept": self.kept}
        if self.pin is not None:
            holds["pin"] = self.pin
        data = {"retired": self.retired, "holds": holds}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
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


def _by(hold: Hold) -> str:
    who = hold.get("by") or "someone"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(int(hold.get("at", 0))))
    reason = f" ({hold['reason']})" if hold.get("reason") else ""
    return f" by {who} at {when}{reason}"
