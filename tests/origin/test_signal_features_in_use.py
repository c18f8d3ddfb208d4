"""The engagement, signal and propensity features in a site config: an audience on the cookie's
``visitFrequency``, one on a profile flag (``propensity:high``), and a linear policy reading
``frequency``, ``velocity`` and ``flag:cart:running``, compiled and decided."""

from __future__ import annotations

import tomllib

from compile.site import compile_site
from core.decide import decide
from core.engine import Engine
from core.features import RequestContext, VisitorState
from core.model import Signals
from core.profile import merge_profile
from core.reason import Reason

SITE = """
[site]
name = "t"
[audiences.regulars]
condition = { visitFrequency = { "$gte" = 3 } }
[audiences.likely_buyers]
condition = { flags = { "$elemMatch" = { "$eq" = "propensity:high" } } }
[[slots.hero.variants]]
id = "plain"
content = "plain"
[[slots.hero.variants]]
id = "offer"
content = "offer"
[[slots.hero.variants]]
id = "loyal"
content = "loyal"
[[slots.hero.rules]]
audience = "likely_buyers"
action = "force"
variant = "offer"
[[slots.hero.rules]]
audience = "regulars"
action = "force"
variant = "loyal"
[slots.recs]
[slots.recs.policy]
kind = "linear"
features = ["bias", "frequency", "velocity", "flag:cart:running"]
[[slots.recs.variants]]
id = "a"
content = "a"
[[slots.recs.variants]]
id = "b"
content = "b"
"""
DAY = 86400


def test_the_features_drive_rules_and_policies() -> None:
    engine = Engine.from_site(compile_site(tomllib.loads(SITE)), "s1")
    now = 30 * DAY
    regular = VisitorState("v-1", visits=9, first_seen=now - 14 * DAY, last_seen=now, page_views=30)
    (hero, recs) = decide(engine, regular, RequestContext(), now)
    assert (hero.variant, hero.reason) == ("loyal", Reason.RULE)  # 4.5 visits a week
    assert recs.reason in (Reason.POLICY, Reason.FALLBACK) and len(recs.features) == 4
    profile = VisitorState("u", user_id="u", flags=frozenset({"propensity:high", "cart:running"}))
    merged = merge_profile(regular, profile, Signals())
    (hero, recs) = decide(engine, merged, RequestContext(), now)
    assert (hero.variant, hero.reason) == ("offer", Reason.RULE)  # the first force rule
    if recs.reason is Reason.POLICY:
        assert recs.features[-1] == 1.0  # flag:cart:running
