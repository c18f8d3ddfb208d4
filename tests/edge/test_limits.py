"""The per-visitor beacon budget: never more than ``per_window`` events a window, bounded memory."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from edge.limits import Budget
from tests.edge import local


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 12), st.integers(0, 5_000)),
        max_size=60,
    )
)
def test_no_visitor_gets_more_than_the_budget_in_any_window(
    calls: list[tuple[str, int, int]],
) -> None:
    limiter = Budget(per_window=10, window_ms=1_000)
    now, granted = 0, []
    for visitor, wanted, step in calls:
        now += step
        got = limiter.take(visitor, wanted, now)
        assert 0 <= got <= wanted
        granted.append((visitor, now, got))
    for visitor in "abc":  # any 1-second window starting at a reset holds at most 10
        start, used = -(10**9), 0
        for v, t, got in granted:
            if v != visitor:
                continue
            if t - start >= 1_000:
                start, used = t, 0
            used += got
            assert used <= 10
    assert limiter.limited == sum(w for _, w, _ in calls) - sum(g for _, _, g in granted)


def test_the_table_stays_bounded_however_many_visitors() -> None:
    limiter = Budget(max_visitors=100)
    for n in range(1_000):
        limiter.take(f"v{n}", 1, n)
    assert len(limiter.windows) <= 100


def test_a_beacon_flood_from_one_visitor_is_cut_at_the_budget(fixture_blob: bytes) -> None:
    edge = local.Edge(fixture_blob)
    edge.stats.beacons = Budget(window_ms=3_600_000)  # the fake clock steps 60 s a request
    edge.request("/")
    decision = edge.io.shipped[-1][1]
    exposure = next(e for e in json.loads(decision)["events"] if e["type"] == "exposure")
    accepted = 0
    for n in range(8):  # 8 beacons of 5 clicks each, within a minute
        clicks = [
            {"type": "click", "decision": exposure["id"], "id": f"c{n}-{i}"} for i in range(5)
        ]
        out = edge.request(
            "/_edgepick/events", method="POST", body=json.dumps({"events": clicks}).encode()
        )
        accepted += json.loads(out.body)["accepted"]  # type: ignore[arg-type]
    assert accepted == 30 and out.status == 429, (accepted, out.status, out.body)
    assert local.health(edge)["beacon_limited"] == 10


def test_one_client_minting_cookies_is_cut_at_its_new_visitor_budget(fixture_blob: bytes) -> None:
    """Cookie-less page views from one address: the first ``per_window`` become stored visitors,
    the rest are served (decided) like visitors without consent: no cookie, nothing logged."""
    edge = local.Edge(fixture_blob)
    edge.stats.new_visitors = Budget(per_window=5, window_ms=3_600_000)
    cookies = 0
    for _ in range(8):
        out = edge.request("/", keep=False, cf_connecting_ip="203.0.113.9")
        assert out.page is not None and "data-edgepick-decision" in out.page.handle
        cookies += any(name == "set-cookie" for name, _ in out.headers)
    assert cookies == 5
    views = [e for e in edge.shipped() if e["type"] == "page_view"]
    assert len(views) == 5
    other = edge.request("/", keep=False, cf_connecting_ip="198.51.100.7")
    assert any(name == "set-cookie" for name, _ in other.headers)  # another client is fine
    assert local.health(edge)["new_visitors_limited"] == 3


def test_bad_cookies_and_the_decide_api_spend_the_new_visitor_budget_too(
    fixture_blob: bytes,
) -> None:
    """A cookie that does not verify gets a fresh visitor like no cookie at all, and the decide
    API mints visitors too: both count against the address's budget (found in review)."""
    edge = local.Edge(fixture_blob)
    edge.stats.new_visitors = Budget(per_window=4, window_ms=3_600_000)
    minted = 0
    for _ in range(6):
        out = edge.request("/", keep=False, cookie="ep=x", cf_connecting_ip="203.0.113.9")
        minted += any(name == "set-cookie" for name, _ in out.headers)
        api = edge.request(
            "/_edgepick/decide?slots=hero", keep=False, cf_connecting_ip="203.0.113.9"
        )
        minted += any(name == "set-cookie" for name, _ in api.headers)
    assert minted == 4
    assert local.health(edge)["new_visitors_limited"] == 8
