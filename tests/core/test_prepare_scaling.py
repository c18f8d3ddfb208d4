"""Preparing a slot is linear in its variants: the one-hot distributions a forced variant is
served with are made when first used, not ``n x n`` of them up front."""

from __future__ import annotations

import tracemalloc

import pytest

from core.engine import Engine
from core.model import FixedPolicy, Granularity, Site, Slot, Variant
from core.snapshot import encode_snapshot
from core.targeting import OneHot


def big_site(n: int) -> Site:
    variants = tuple(Variant(f"v{i}", f"<p>{i}</p>") for i in range(n))
    slot = Slot("big", Granularity.ELEMENT, "v0", variants, FixedPolicy((1 / n,) * n, "s"))
    return Site("big", (slot,))


def prepared_bytes(n: int) -> int:
    blob = encode_snapshot(big_site(n))
    tracemalloc.start()
    engine = Engine.from_bytes(blob)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(engine.slots["big"].ids) == n
    return peak


def test_memory_to_prepare_grows_linearly_with_variants() -> None:
    small, large = prepared_bytes(1000), prepared_bytes(4000)
    assert large < 6 * small  # quadratic would be 16x


def test_one_hot_vectors_are_made_on_demand() -> None:
    certain = OneHot(5)
    assert certain[2] == (0.0, 0.0, 1.0, 0.0, 0.0) and certain[2] is certain[2]
    assert len(certain.made) == 1
    with pytest.raises(IndexError):
        certain[5]
