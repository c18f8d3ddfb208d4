"""The lake's one table: every event type in one Parquet schema, derived from ``core.events``.

Every event has what ``core.events.problem`` requires of all of them (``type``, ``id``, ``ts``,
``visitor``). The typed columns beside them are the fields the aggregation SQL reads
(``origin.lake.sql``: the exposure's slot, variant, reason, segment and feature vector, the
outcome's decision and value); each is filled when the event has it and NULL otherwise. Every
other field, of any type (including event types ``core.events`` grows later), travels in
``payload``, the JSON of the event's remaining fields, so ``to_event(to_row(e)) == e`` for any
event ``core.events.problem`` accepts (tested for each of ``core.events.EVENT_TYPES`` and a type
that does not exist yet). ``width`` is the feature vector's length (the SQL keeps a row in the
linear statistics only when it equals the slot's width), ``features`` a list of doubles.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

# the fields every event carries (core.events.problem requires them of each type)
COMMON: dict[str, pa.DataType] = {
    "type": pa.string(),
    "id": pa.string(),
    "ts": pa.int64(),
    "visitor": pa.string(),
}
# the exposure and outcome fields the aggregation reads (NULL on other types)
TYPED: dict[str, pa.DataType] = {
    "user": pa.string(),
    "slot": pa.string(),
    "variant": pa.string(),
    "propensity": pa.float64(),
    "reason": pa.string(),
    "segment": pa.string(),
    "decision": pa.string(),
    "value": pa.float64(),
    "features": pa.list_(pa.float64()),
}
SCHEMA = pa.schema(
    [pa.field(name, kind, nullable=name not in COMMON) for name, kind in COMMON.items()]
    + [pa.field(name, kind) for name, kind in TYPED.items()]
    + [pa.field("width", pa.int32()), pa.field("payload", pa.string(), nullable=False)]
)
COLUMNS = tuple(SCHEMA.names)
_FIELDS = (*COMMON, *TYPED)


def to_row(event: Mapping[str, Any]) -> dict[str, Any]:
    """One lake row for an event ``core.events.problem`` accepts (raises ``ValueError``,
    naming the event, for one without the common fields)."""
    missing = [k for k in COMMON if k not in event]
    if missing:
        raise ValueError(f"event {event.get('id')!r}: no {', '.join(missing)} for the lake")
    row: dict[str, Any] = {k: event.get(k) for k in _FIELDS}
    for key, kind in TYPED.items():  # a field of another shape stays in the payload only
        if row[key] is not None and not _fits(row[key], kind):
            row[key] = None
    features = row["features"]
    row["features"] = [float(x) for x in features] if features is not None else None
    row["width"] = len(features) if features is not None else None
    rest = {k: v for k, v in event.items() if k not in _FIELDS or row.get(k) is None}
    row["payload"] = json.dumps(rest, separators=(",", ":"), sort_keys=True)
    return row


def _fits(value: Any, kind: pa.DataType) -> bool:
    if kind == pa.string():
        return isinstance(value, str)
    if kind == pa.float64():
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, list) and all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in value
    )


def to_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """The event a lake row holds."""
    event: dict[str, Any] = {k: row[k] for k in _FIELDS if row.get(k) is not None}
    event.update(json.loads(row["payload"]))
    return event


def table(events: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Events as one Arrow table in the lake's schema."""
    rows = [to_row(e) for e in events]
    return pa.Table.from_pylist(rows, schema=SCHEMA)
