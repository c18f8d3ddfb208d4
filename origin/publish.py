"""Publishing: the blob first, then the pointer; rollback moves the pointer back.

``publish`` writes ``snap/<id>`` to **every** target before it moves ``snap/current`` on any, so
an interrupted publish (a target failing, the process killed) leaves every pointer on the
previous, complete snapshot. Each publish and rollback is appended to the registry's audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.model import Header
from core.snapshot import decode_snapshot
from origin.registry import Registry
from origin.targets import Target, TargetError

CURRENT_KEY = "snap/current"


def blob_key(snapshot_id: str) -> str:
    return f"snap/{snapshot_id}"


class PublishError(RuntimeError):
    """A publish that did not complete; the message says how far it got."""


@dataclass(frozen=True, slots=True)
class Published:
    header: Header
    previous: str | None
    targets: tuple[str, ...]


def publish(
    blob: bytes,
    targets: Sequence[Target],
    registry: Registry,
    *,
    action: str = "publish",
    author: str = "",
    note: str = "",
) -> Published:
    """Store ``blob`` in the registry, write it to the targets, then move their pointers."""
    decode_snapshot(blob)  # never publish bytes the edge would refuse
    header = registry.add(blob)
    previous = registry.current()
    names = tuple(t.name for t in targets)
    for target in targets:
        try:
            target.put(blob_key(header.id), blob)
        except (TargetError, OSError) as exc:
            registry.audit(
                f"{action}-failed", id=header.id, stage="blob", target=target.name, error=str(exc)
            )
            raise PublishError(
                f"{action} {header.id}: writing the blob to {target.name} failed ({exc}); "
                f"no pointer was moved, the edge still serves {previous or 'nothing'}"
            ) from exc
    moved: list[str] = []
    for target in targets:
        try:
            target.put(CURRENT_KEY, header.id.encode())
        except (TargetError, OSError) as exc:
            registry.audit(
                f"{action}-failed",
                id=header.id,
                stage="pointer",
                target=target.name,
                moved=moved,
                error=str(exc),
            )
            raise PublishError(
                f"{action} {header.id}: moving the pointer on {target.name} failed ({exc}); "
                f"moved on: {', '.join(moved) or 'none'}; the others still point at "
                f"{previous or 'nothing'} (complete); rerun to finish"
            ) from exc
        moved.append(target.name)
    registry.set_current(header.id)
    registry.audit(
        action,
        id=header.id,
        parent=header.parent,
        previous=previous,
        author=author or header.author,
        message=note or header.message,
        targets=list(names),
    )
    return Published(header, previous, names)


def rollback(
    registry: Registry, snapshot: str, targets: Sequence[Target], author: str = ""
) -> Published:
    """Point every target (and the registry) back at an earlier snapshot of the registry."""
    sid = registry.resolve(snapshot)
    return publish(
        registry.get(sid),
        targets,
        registry,
        action="rollback",
        author=author,
        note=f"rollback to {sid}",
    )
