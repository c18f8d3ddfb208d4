"""Engagement from the cookie (core.features): visit frequency and page views per visit, as
audience attributes and linear-policy features."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from core.features import (
    RequestContext,
    VisitorState,
    attributes,
    feature_problem,
    featurizer,
    views_per_visit,
    visit_frequency,
)
from core.model import Signals

DAY = 86400


def test_frequency_and_views_per_visit() -> None:
    state = VisitorState("v", visits=6, first_seen=1, last_seen=14 * DAY, page_views=18)
    assert visit_frequency(state, 14 * DAY + 1) == 3.0  # 6 visits in 2 weeks
    assert visit_frequency(state._replace(visits=2), 2 * DAY) == 2.0  # at least one week
    assert visit_frequency(VisitorState("new"), 5) == 0.0
    assert views_per_visit(state) == 3.0 and views_per_visit(VisitorState("new")) == 0.0
    found = attributes(state, RequestContext(), 14 * DAY + 1, Signals())
    assert found["visitFrequency"] == 3.0 and found["pageViewsPerVisit"] == 3.0
    assert feature_problem("frequency") is None and feature_problem("velocity") is None
    assert feature_problem("velocity:x") is not None
    x = featurizer(("bias", "frequency", "velocity"))(state, RequestContext(), {}, 14 * DAY + 1)
    assert x == (1.0, math.log1p(3.0), math.log1p(3.0))


@given(
    st.integers(0, 10_000),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.integers(0, 100_000),
)
def test_engagement_features_are_finite_and_non_negative(
    visits: int, first: int, now: int, views: int
) -> None:
    state = VisitorState("v", visits=visits, first_seen=first, last_seen=first, page_views=views)
    x = featurizer(("frequency", "velocity"))(state, RequestContext(), {}, now)
    assert all(math.isfinite(v) and v >= 0 for v in x)
