from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.model import (
    Audience,
    Exploration,
    FixedPolicy,
    Granularity,
    Lifecycle,
    LinearArm,
    LinearPolicy,
    Placement,
    Route,
    Rule,
    RuleAction,
    Signals,
    Site,
    Slot,
    Taxonomy,
    ThompsonPolicy,
    Variant,
)
from core.packing import pack, unpack
from core.snapshot import SnapshotError, decode_header, decode_snapshot, encode_snapshot

text = st.text(max_size=12)
ids = st.text(min_size=1, max_size=8)
weights = st.floats(min_value=0, max_value=1, allow_nan=False)


@st.composite
def slots(draw: st.DrawFn) -> Slot:
    vids = draw(st.lists(ids, min_size=1, max_size=5, unique=True))
    variants = tuple(
        Variant(
            vid,
            draw(text),
            Taxonomy(draw(text), draw(text), draw(text), draw(text)),
            draw(st.sampled_from(Lifecycle)),
            draw(weights),
        )
        for vid in vids
    )
    n = len(variants)
    features = tuple(draw(st.lists(text, max_size=4)))
    policy = draw(
        st.one_of(
            st.builds(FixedPolicy, st.tuples(*[weights] * n), text),
            st.builds(ThompsonPolicy, st.tuples(*[weights] * n), weights),
            st.builds(
                ThompsonPolicy,
                st.tuples(*[weights] * n),
                weights,
                st.just(("segment-a", "segment-b")),
                st.tuples(st.tuples(*[weights] * n), st.tuples(*[weights] * n)),
            ),
            st.builds(
                LinearPolicy,
                st.just(features),
                st.tuples(
                    *[st.builds(LinearArm, weights, st.tuples(*[weights] * len(features)))] * n
                ),
                st.sampled_from(Exploration),
                weights,
                weights,
                weights,
                st.one_of(st.just(()), st.tuples(*[weights] * n)),
                st.one_of(st.just(()), st.tuples(*[weights] * n)),  # squarecb's learned gammas
            ),
        )
    )
    rules = tuple(
        Rule(
            draw(ids),
            draw(st.sampled_from(RuleAction)),
            tuple(draw(st.lists(st.sampled_from(vids)))),
        )
        for _ in range(draw(st.integers(0, 3)))
    )
    return Slot(
        draw(ids),
        draw(st.sampled_from(Granularity)),
        draw(st.sampled_from(vids)),
        variants,
        policy,
        rules,
        draw(st.sampled_from(Placement)),
        draw(text),
        tuple(draw(st.lists(text))),
    )


sites = st.builds(
    Site,
    name=ids,
    slots=st.lists(slots(), min_size=1, max_size=3).map(tuple),
    audiences=st.lists(
        st.builds(
            Audience, ids, st.dictionaries(ids, st.integers(-(2**63), 2**63 - 1) | text), text
        ),
        max_size=3,
    ).map(tuple),
    saved_groups=st.dictionaries(ids, st.lists(st.integers(-(2**63), 2**64 - 1) | text).map(tuple)),
    signals=st.builds(
        Signals,
        categories=st.lists(st.builds(Route, text, text)).map(tuple),
        funnel=st.lists(st.builds(Route, text, text)).map(tuple),
        stages=st.lists(text).map(tuple),
        half_life=st.integers(1, 10**9),
        session_timeout=st.integers(1, 10**6),
        max_categories=st.integers(1, 20),
    ),
    epoch=st.integers(0, 2**31),
    holdout=weights,
    origin=text,
)


@settings(max_examples=150)
@given(sites, text, st.integers(0, 2**40), text, text)
def test_round_trip(site: Site, parent: str, created: int, author: str, message: str) -> None:
    blob = encode_snapshot(site, parent=parent, created=created, author=author, message=message)
    snap = decode_snapshot(blob)
    assert snap.site == site
    assert (snap.header.parent, snap.header.created, snap.header.author, snap.header.message) == (
        parent,
        created,
        author,
        message,
    )


@given(sites, text)
def test_id_names_the_content(site: Site, message: str) -> None:
    a = decode_header(encode_snapshot(site, message=message))[0].id
    b = decode_header(encode_snapshot(site, message=message + "!", created=5))[0].id
    assert a == b and len(a) == 20


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_garbage_raises_snapshot_error_only(blob: bytes) -> None:
    with pytest.raises(SnapshotError):
        decode_snapshot(blob)


@settings(max_examples=300)
@given(st.data())
def test_any_corruption_is_refused(fixture_blob: bytes, data: st.DataObject) -> None:
    blob = bytearray(fixture_blob)
    cut = data.draw(st.booleans())
    if cut:
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    else:
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] ^= data.draw(st.integers(1, 255))
    try:
        snap = decode_snapshot(bytes(blob))
    except SnapshotError:
        return
    # a flip inside the header's free-text fields may still decode: the site must be untouched
    assert snap.site == decode_snapshot(fixture_blob).site


def test_header_errors_say_what_is_wrong(fixture_blob: bytes) -> None:
    outer = unpack(fixture_blob)
    cases = {
        "bad magic": ["nope", *outer[1:]],
        "unsupported schema version": [outer[0], 99, *outer[2:]],
        "content hash does not match": [*outer[:2], "0" * 20, *outer[3:]],
        "snapshot.created: expected int": [*outer[:4], "yesterday", *outer[5:]],
        "expected an 8-item header": outer[:7],
    }
    for message, tree in cases.items():
        with pytest.raises(SnapshotError, match=message):
            decode_snapshot(pack(tree))
    with pytest.raises(SnapshotError, match="must be bytes"):
        decode_snapshot("text")  # type: ignore[arg-type]


def test_site_shape_errors_name_the_path(fixture_blob: bytes) -> None:
    from core.snapshot import content_id

    outer = unpack(fixture_blob)
    site = unpack(outer[7])
    site["slots"][1]["policy"]["kind"] = "oracle"
    site_bytes = pack(site)
    blob = pack([*outer[:2], content_id(site_bytes), *outer[3:7], site_bytes])
    with pytest.raises(SnapshotError, match=r"site\.slots\[1\]\.policy\.kind: unknown policy kind"):
        decode_snapshot(blob)


def _with_audience_condition(fixture_blob: bytes, condition: dict[str, object]) -> bytes:
    import dataclasses

    site = decode_snapshot(fixture_blob).site
    first = dataclasses.replace(site.audiences[0], condition=condition)
    site = dataclasses.replace(site, audiences=(first, *site.audiences[1:]))
    return encode_snapshot(site)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_by_the_decoder(fixture_blob: bytes, bad: float) -> None:
    import dataclasses

    site = decode_snapshot(fixture_blob).site
    site = dataclasses.replace(site, holdout=bad)
    with pytest.raises(SnapshotError, match="finite"):
        decode_snapshot(encode_snapshot(site))
    with pytest.raises(SnapshotError, match="non-finite"):
        decode_snapshot(_with_audience_condition(fixture_blob, {"visits": {"$gt": bad}}))


def test_nesting_the_edge_cannot_prepare_is_refused_by_the_decoder(fixture_blob: bytes) -> None:
    condition: dict[str, object] = {"device": "mobile"}
    for _ in range(200):
        condition = {"$and": [condition]}
    with pytest.raises(SnapshotError, match="nested deeper"):
        decode_snapshot(_with_audience_condition(fixture_blob, condition))


def test_learned_gammas_are_optional_and_checked(fixture_blob: bytes) -> None:
    """``gammas`` (squarecb) is written only when there are some: a snapshot without them
    keeps its bytes and id; sized per variant, >= 0, finite, or the decoder refuses it."""
    from dataclasses import replace

    snap = decode_snapshot(fixture_blob)
    h = snap.header
    again_blob = encode_snapshot(
        snap.site, parent=h.parent, created=h.created, author=h.author, message=h.message
    )
    assert again_blob == fixture_blob
    assert b"gammas" not in fixture_blob
    i, slot = next(
        (i, s) for i, s in enumerate(snap.site.slots) if isinstance(s.policy, LinearPolicy)
    )
    assert isinstance(slot.policy, LinearPolicy)
    n = len(slot.variants)
    policy = replace(slot.policy, exploration=Exploration.SQUARECB, gammas=(2.5,) * n)
    slots = list(snap.site.slots)
    slots[i] = replace(slot, policy=policy)
    site = replace(snap.site, slots=tuple(slots))
    again = decode_snapshot(encode_snapshot(site)).site.slots[i].policy
    assert isinstance(again, LinearPolicy) and again.gammas == (2.5,) * n
    for bad, why in (((1.0,) * (n + 1), "not sized"), ((-1.0,) * n, ">= 0")):
        slots[i] = replace(slot, policy=replace(policy, gammas=bad))
        with pytest.raises(SnapshotError, match=why):
            decode_snapshot(encode_snapshot(replace(snap.site, slots=tuple(slots))))
