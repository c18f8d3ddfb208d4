"""Snapshot codec: one msgpack blob ``[magic, schema, id, parent, created, author, message, site]``.

``site`` is itself msgpack bytes and ``id`` is the first 20 hex digits of its SHA-256, so the id
names the content (same site -> same id) and is verified on decode before anything is unpacked.
Any bytes that are not a valid snapshot raise ``SnapshotError`` saying what is wrong.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from core.model import (
    MAGIC,
    SCHEMA_VERSION,
    Audience,
    CookieSpec,
    Exploration,
    FixedPolicy,
    Granularity,
    Header,
    Lifecycle,
    LinearArm,
    LinearPolicy,
    Placement,
    Policy,
    Route,
    Rule,
    RuleAction,
    Signals,
    Site,
    Slot,
    Snapshot,
    Taxonomy,
    ThompsonPolicy,
    Variant,
)
from core.packing import pack, unpack

MAX_BLOB_BYTES = 25 * 1024 * 1024  # Workers KV's value limit

T = TypeVar("T")


class SnapshotError(ValueError):
    """The bytes are not a valid edgepick snapshot; the message says where and why."""


def content_id(site_bytes: bytes) -> str:
    return hashlib.sha256(site_bytes).hexdigest()[:20]


def encode_site(site: Site) -> bytes:
    return pack(_site_tree(site))


def encode_snapshot(
    site: Site, *, parent: str = "", created: int = 0, author: str = "", message: str = ""
) -> bytes:
    site_bytes = encode_site(site)
    return pack(
        [
            MAGIC,
            SCHEMA_VERSION,
            content_id(site_bytes),
            parent,
            created,
            author,
            message,
            site_bytes,
        ]
    )


def decode_header(blob: bytes) -> tuple[Header, bytes]:
    """The verified header and the site's bytes, without decoding the site."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise SnapshotError(f"snapshot must be bytes, got {type(blob).__name__}")
    if len(blob) > MAX_BLOB_BYTES:
        raise SnapshotError(f"snapshot is {len(blob)} bytes, over the {MAX_BLOB_BYTES} limit")
    outer = _unpack(bytes(blob), "snapshot")
    if not isinstance(outer, list) or len(outer) != 8:
        raise SnapshotError("snapshot: expected an 8-item header array")
    magic, schema, sid, parent, created, author, message, site_bytes = outer
    if magic != MAGIC:
        raise SnapshotError(f"snapshot: bad magic {magic!r}")
    if schema != SCHEMA_VERSION:
        raise SnapshotError(f"snapshot: unsupported schema version {schema!r}")
    for name, value, kind in (
        ("id", sid, str),
        ("parent", parent, str),
        ("created", created, int),
        ("author", author, str),
        ("message", message, str),
        ("site", site_bytes, bytes),
    ):
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SnapshotError(f"snapshot.{name}: expected {kind.__name__}, got {value!r:.60}")
    if content_id(site_bytes) != sid:
        raise SnapshotError(f"snapshot: content hash does not match id {sid!r}")
    return Header(sid, parent, created, author, message, schema), site_bytes


def decode_snapshot(blob: bytes) -> Snapshot:
    header, site_bytes = decode_header(blob)
    tree = _unpack(site_bytes, "snapshot.site")
    _check_values(tree, "site")
    try:
        site = _site_from(tree, "site")
    except SnapshotError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        raise SnapshotError(f"site: malformed ({type(exc).__name__}: {exc})") from exc
    return Snapshot(header, site)


MAX_DEPTH = 96  # nesting the edge will prepare (the compiler allows 64 in a config)


def _check_values(tree: Any, path: str) -> None:
    """What the engine's preparation assumes of every value: finite floats, integers within
    64 bits, nesting within ``MAX_DEPTH`` (generated predicates and closures recurse)."""
    stack: list[tuple[Any, int]] = [(tree, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SnapshotError(f"{path}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            stack += [(v, depth + 1) for v in value.values()]
        elif isinstance(value, list):
            stack += [(v, depth + 1) for v in value]
        elif isinstance(value, float) and not math.isfinite(value):
            raise SnapshotError(f"{path}: a non-finite number ({value!r})")


def _unpack(data: bytes, where: str) -> Any:
    try:
        return unpack(data)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise SnapshotError(f"{where}: not valid msgpack ({type(exc).__name__}: {exc})") from exc


# ---------------------------------------------------------------- encode


def _policy_tree(policy: Policy) -> dict[str, Any]:
    if isinstance(policy, FixedPolicy):
        return {"kind": "fixed", "weights": list(policy.weights), "seed": policy.seed}
    if isinstance(policy, ThompsonPolicy):
        return {
            "kind": "thompson",
            "weights": list(policy.weights),
            "floor": policy.floor,
            "segments": [
                [name, list(w)]
                for name, w in zip(policy.segments, policy.segment_weights, strict=True)
            ],
        }
    tree: dict[str, Any] = {
        "kind": "linear",
        "features": list(policy.features),
        "arms": [[a.bias, list(a.weights)] for a in policy.arms],
        "exploration": policy.exploration.value,
        "temperature": policy.temperature,
        "gamma": policy.gamma,
        "floor": policy.floor,
        "cold_start": list(policy.cold_start),
    }
    if policy.gammas:  # optional: absent when empty, so older snapshots keep their bytes and id
        tree["gammas"] = list(policy.gammas)
    return tree


def _site_tree(site: Site) -> dict[str, Any]:
    sig = site.signals
    return {
        "name": site.name,
        "epoch": site.epoch,
        "holdout": site.holdout,
        "origin": site.origin,
        "cookie": [site.cookie.name, site.cookie.max_bytes, site.cookie.max_age],
        "signals": {
            "categories": [[r.prefix, r.value] for r in sig.categories],
            "funnel": [[r.prefix, r.value] for r in sig.funnel],
            "stages": list(sig.stages),
            "half_life": sig.half_life,
            "session_timeout": sig.session_timeout,
            "max_categories": sig.max_categories,
        },
        "saved_groups": {
            k: dict(v) if isinstance(v, dict) else list(v) for k, v in site.saved_groups.items()
        },
        "audiences": [[a.name, a.condition, a.description] for a in site.audiences],
        "slots": [
            {
                "name": s.name,
                "granularity": s.granularity.value,
                "default": s.default,
                "placement": s.placement.value,
                "selector": s.selector,
                "paths": list(s.paths),
                "variants": [
                    [
                        v.id,
                        v.content,
                        [v.tags.segment, v.tags.stage, v.tags.intent, v.tags.theme],
                        v.lifecycle.value,
                        v.min_engagement,
                    ]
                    for v in s.variants
                ],
                "rules": [[r.audience, r.action.value, list(r.variants)] for r in s.rules],
                "policy": _policy_tree(s.policy),
            }
            for s in site.slots
        ],
    }


# ---------------------------------------------------------------- decode


def _need(value: Any, kind: type[T] | tuple[type, ...], path: str) -> T:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise SnapshotError(f"{path}: expected {names}, got {value!r:.60}")
    return value  # type: ignore[return-value]


def _get(tree: Mapping[str, Any], key: str, kind: type[T] | tuple[type, ...], path: str) -> T:
    if key not in tree:
        raise SnapshotError(f"{path}.{key}: missing")
    return _need(tree[key], kind, f"{path}.{key}")


def _num(value: Any, path: str) -> float:
    number = float(_need(value, (int, float), path))
    if not math.isfinite(number):
        raise SnapshotError(f"{path}: expected a finite number, got {value!r:.60}")
    return number


def _floats(value: Any, path: str) -> tuple[float, ...]:
    return tuple(_num(x, f"{path}[{i}]") for i, x in enumerate(_need(value, list, path)))


def _strs(value: Any, path: str) -> tuple[str, ...]:
    return tuple(_need(x, str, f"{path}[{i}]") for i, x in enumerate(_need(value, list, path)))


def _enum(kind: Callable[[str], T], value: Any, path: str) -> T:
    try:
        return kind(_need(value, str, path))
    except ValueError:
        raise SnapshotError(f"{path}: unknown value {value!r}") from None


def _items(tree: Mapping[str, Any], key: str, path: str) -> list[tuple[str, Any]]:
    values = _get(tree, key, list, path)
    return [(f"{path}.{key}[{i}]", v) for i, v in enumerate(values)]


def _policy_from(tree: Any, path: str) -> Policy:
    tree = _need(tree, dict, path)
    kind = _get(tree, "kind", str, path)
    if kind == "fixed":
        return FixedPolicy(
            _floats(tree.get("weights"), f"{path}.weights"), _get(tree, "seed", str, path)
        )
    if kind == "thompson":
        names, weights = [], []
        for p, pair in _items(tree, "segments", path):
            name, values = _need(pair, list, p)
            names.append(_need(name, str, p))
            weights.append(_floats(values, f"{p}[1]"))
        return ThompsonPolicy(
            _floats(tree.get("weights"), f"{path}.weights"),
            _num(tree.get("floor"), f"{path}.floor"),
            tuple(names),
            tuple(weights),
        )
    if kind == "linear":
        arms = []
        for p, arm in _items(tree, "arms", path):
            bias, weights = _need(arm, list, p)
            arms.append(LinearArm(_num(bias, f"{p}[0]"), _floats(weights, f"{p}[1]")))
        return LinearPolicy(
            features=_strs(tree.get("features"), f"{path}.features"),
            arms=tuple(arms),
            exploration=_enum(Exploration, tree.get("exploration"), f"{path}.exploration"),
            temperature=_num(tree.get("temperature"), f"{path}.temperature"),
            gamma=_num(tree.get("gamma"), f"{path}.gamma"),
            floor=_num(tree.get("floor"), f"{path}.floor"),
            cold_start=_floats(tree.get("cold_start"), f"{path}.cold_start"),
            gammas=_floats(tree.get("gammas", []), f"{path}.gammas"),
        )
    raise SnapshotError(f"{path}.kind: unknown policy kind {kind!r}")


def _variant_from(item: Any, path: str) -> Variant:
    vid, content, tags, lifecycle, min_engagement = _need(item, list, path)
    segment, stage, intent, theme = _strs(tags, f"{path}.tags")
    return Variant(
        id=_need(vid, str, f"{path}.id"),
        content=_need(content, str, f"{path}.content"),
        tags=Taxonomy(segment, stage, intent, theme),
        lifecycle=_enum(Lifecycle, lifecycle, f"{path}.lifecycle"),
        min_engagement=_num(min_engagement, f"{path}.min_engagement"),
    )


def _slot_from(tree: Any, path: str) -> Slot:
    tree = _need(tree, dict, path)
    variants = tuple(_variant_from(v, p) for p, v in _items(tree, "variants", path))
    rules = []
    for p, rule in _items(tree, "rules", path):
        audience, action, ids = _need(rule, list, p)
        rules.append(
            Rule(_need(audience, str, p), _enum(RuleAction, action, p), _strs(ids, f"{p}.variants"))
        )
    slot = Slot(
        name=_get(tree, "name", str, path),
        granularity=_enum(Granularity, tree.get("granularity"), f"{path}.granularity"),
        default=_get(tree, "default", str, path),
        variants=variants,
        policy=_policy_from(tree.get("policy"), f"{path}.policy"),
        rules=tuple(rules),
        placement=_enum(Placement, tree.get("placement"), f"{path}.placement"),
        selector=_get(tree, "selector", str, path),
        paths=_strs(tree.get("paths"), f"{path}.paths"),
    )
    _check_slot(slot, path)
    return slot


def _check_slot(slot: Slot, path: str) -> None:
    ids = {v.id for v in slot.variants}
    if slot.default not in ids:
        raise SnapshotError(f"{path}.default: {slot.default!r} is not one of the slot's variants")
    count = len(slot.variants)
    policy = slot.policy
    if isinstance(policy, ThompsonPolicy):
        for name, weights in zip(policy.segments, policy.segment_weights, strict=True):
            if len(weights) != count:
                raise SnapshotError(f"{path}.policy.segments.{name}: not sized for {count}")
    sized = len(policy.arms) if isinstance(policy, LinearPolicy) else len(policy.weights)
    if sized != count:
        raise SnapshotError(f"{path}.policy: sized for {sized} variants, not {count}")
    if isinstance(policy, LinearPolicy):
        width = len(policy.features)
        for i, arm in enumerate(policy.arms):
            if len(arm.weights) != width:
                raise SnapshotError(
                    f"{path}.policy.arms[{i}]: {len(arm.weights)} weights, not {width}"
                )
        if policy.cold_start and len(policy.cold_start) != count:
            raise SnapshotError(f"{path}.policy.cold_start: not sized for {count} variants")
        if policy.gammas and len(policy.gammas) != count:
            raise SnapshotError(f"{path}.policy.gammas: not sized for {count} variants")
        if any(g < 0.0 for g in policy.gammas):
            raise SnapshotError(f"{path}.policy.gammas: must be >= 0")
    for rule in slot.rules:
        unknown = [v for v in rule.variants if v not in ids]
        if unknown:
            raise SnapshotError(f"{path}.rules: unknown variants {unknown}")


def _routes(value: Any, path: str) -> tuple[Route, ...]:
    routes = []
    for i, pair in enumerate(_need(value, list, path)):
        prefix, target = _need(pair, list, f"{path}[{i}]")
        routes.append(Route(_need(prefix, str, f"{path}[{i}]"), _need(target, str, f"{path}[{i}]")))
    return tuple(routes)


def _site_from(tree: Any, path: str) -> Site:
    tree = _need(tree, dict, path)
    sig = _get(tree, "signals", dict, path)
    sp = f"{path}.signals"
    name, max_bytes, max_age = _get(tree, "cookie", list, path)
    audiences = []
    for p, item in _items(tree, "audiences", path):
        aname, condition, description = _need(item, list, p)
        audiences.append(
            Audience(_need(aname, str, p), _need(condition, dict, p), _need(description, str, p))
        )
    groups = _get(tree, "saved_groups", dict, path)
    return Site(
        name=_get(tree, "name", str, path),
        epoch=_get(tree, "epoch", int, path),
        holdout=_num(tree.get("holdout"), f"{path}.holdout"),
        origin=_get(tree, "origin", str, path),
        cookie=CookieSpec(
            _need(name, str, f"{path}.cookie"),
            _need(max_bytes, int, f"{path}.cookie"),
            _need(max_age, int, f"{path}.cookie"),
        ),
        signals=Signals(
            categories=_routes(sig.get("categories"), f"{sp}.categories"),
            funnel=_routes(sig.get("funnel"), f"{sp}.funnel"),
            stages=_strs(sig.get("stages"), f"{sp}.stages"),
            half_life=_get(sig, "half_life", int, sp),
            session_timeout=_get(sig, "session_timeout", int, sp),
            max_categories=_get(sig, "max_categories", int, sp),
        ),
        saved_groups={
            k: v if isinstance(v, dict) else tuple(_need(v, list, f"{path}.saved_groups.{k}"))
            for k, v in groups.items()
        },
        audiences=tuple(audiences),
        slots=tuple(_slot_from(s, p) for p, s in _items(tree, "slots", path)),
    )
