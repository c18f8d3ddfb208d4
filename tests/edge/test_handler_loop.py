"""What the edge ships, request by request (issue 10): page views, exposures only for what was
shown, async slots on the page's word, exact previews, delivery counters, no fake latencies.
In-process with the in-memory runtime; tests/edge/test_wrangler_dev_loop.py repeats each
scenario through the real worker and the real collector."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

from core import cookie, events, preview
from core.engine import Engine
from edge.delivery import DeliveryStats, deliver, ship
from tests.edge import local
from tests.edge.local import Edge

UA_CURL = "curl/8.5.0"


def state(edge: Edge) -> Any:
    return cookie.decode(edge.jar["ep"], edge.config.keyring, None).state  # type: ignore[arg-type]


def decide_api(edge: Edge, query: str) -> dict[str, Any]:
    out = edge.request(f"/_edgepick/decide?{query}")
    body: dict[str, Any] = json.loads(out.body)  # type: ignore[arg-type]
    return body


def beacon(edge: Edge, *items: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"events": list(items)}).encode()
    out = edge.request("/_edgepick/events", method="POST", body=body)
    answer: dict[str, Any] = json.loads(out.body)  # type: ignore[arg-type]
    return answer


def token(
    edge: Edge, expires_in: int = 600, key: bytes = b"preview-secret", **variants: str
) -> str:
    found = preview.Preview(edge.io.now // 1000 + expires_in, {}, variants)
    return preview.encode(found, key)


# ---------------------------------------------------------------- defect 1: page views


def test_every_view_ships_a_page_view_fresh_or_reused(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    for path in ("/c/running", "/c/running", "/c/running", "/cart"):
        edge.request(path)
    views = edge.page_views()
    assert [v["path"] for v in views] == ["/c/running"] * 3 + ["/cart"]
    assert [v["category"] for v in views] == ["running"] * 3 + [""]
    assert len({v["id"] for v in views}) == 4 and {v["visitor"] for v in views} == {
        state(edge).visitor_id
    }
    assert [v["ts"] for v in views] == sorted(v["ts"] for v in views)
    exposures = edge.exposures()
    assert exposures and all(e["path"] == "/c/running" for e in exposures[:2])
    assert state(edge).stage == "cart"  # what the cookie says the stitched profile must say


def test_no_page_view_without_consent_or_for_tools(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    edge.request("/", sec_gpc="1")
    edge.request("/", user_agent=UA_CURL, keep=False)
    edge.request("/", user_agent="python-requests/2.32.3", keep=False)
    assert edge.shipped() == []


# ---------------------------------------------------------------- defect 2: long user ids


def test_a_long_user_id_identifies_and_the_batch_is_never_lost(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    edge.request("/")
    user = "customer-" + "x" * 110  # 119 characters: within core.identity.MAX_USER_ID
    answer = edge.identify(user)
    assert answer == {"accepted": 1, "errors": []}
    (identified,) = [e for e in edge.shipped() if e["type"] == events.IDENTIFY]
    assert identified["user"] == user and len(identified["id"]) <= events.MAX_ID
    assert state(edge).user_id == user
    too_long = "y" * (events.MAX_USER_ID + 1)
    assert events.problem({**identified, "user": too_long}) is not None  # the one limit


def test_one_invalid_event_is_left_out_not_the_batch() -> None:
    from edge.config import load
    from tests.edge.fakes import FakeIO
    from tests.edge.local import ENV

    io, stats = FakeIO(), DeliveryStats()
    good = events.identify_event("v-1", "u-1", 1_790_000_000_000)
    bad = {**good, "id": "x" * 80}
    ship(io, load(lambda k: ENV.get(k, "")), stats, [good, bad, {**good, "id": "v-1:2"}])
    (sent,) = io.shipped
    assert [e["id"] for e in json.loads(sent[1])["events"]] == [good["id"], "v-1:2"]
    assert stats.invalid == 1 and "at most 64" in stats.last_error


# ---------------------------------------------------------------- defect 5: shown only


@pytest.mark.parametrize(
    ("status", "ctype"),
    [(500, "text/html"), (302, "text/html"), (200, "application/json"), (404, "text/html")],
)
def test_pages_not_shown_personalized_log_nothing(
    fixture_blob: bytes, status: int, ctype: str
) -> None:
    edge = Edge(fixture_blob)
    for path in ("/", "/landing/outdoor", "/landing/deals"):
        edge.io.pages[path] = (status, ctype, "<html><body>oops</body></html>")
    out = edge.request("/")
    assert out.status == status and edge.shipped() == []
    assert all(name != "set-cookie" for name, _ in out.headers)  # not a view: cookie unchanged


@pytest.mark.parametrize(
    "headers",
    [{"sec_purpose": "prefetch"}, {"purpose": "prefetch"}, {"sec_purpose": "prefetch;prerender"}],
)
def test_speculative_requests_log_nothing(fixture_blob: bytes, headers: dict[str, str]) -> None:
    edge = Edge(fixture_blob)
    out = edge.request("/", **headers)  # type: ignore[arg-type]
    assert out.page.handle.count("data-edgepick-decision=") == 4  # type: ignore[union-attr]
    assert edge.shipped() == [] and "ep" not in edge.jar


@pytest.mark.parametrize(
    "agent", [UA_CURL, "python-requests/2.32.3", "Go-http-client/1.1", "Wget/1.21.4", ""]
)
def test_tools_are_not_people(fixture_blob: bytes, agent: str) -> None:
    edge = Edge(fixture_blob)
    edge.request("/", user_agent=agent)
    edge.request("/_edgepick/decide?slots=recs&path=/", user_agent=agent)
    assert edge.shipped() == []


def test_async_slots_are_logged_when_the_page_reports_them_shown(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    edge.request("/")
    edge.io.shipped.clear()
    (recs,) = decide_api(edge, "slots=recs&path=/")["decisions"]
    assert edge.shipped() == []  # answering is not showing
    forged = {**recs, "receipt": recs["receipt"][:-2] + "AA"}
    answer = beacon(
        edge,
        {"type": "shown", "decision": forged["decision"], "receipt": forged["receipt"]},
        {"type": "shown", "decision": "someone-else", "receipt": recs["receipt"]},
        {"type": "shown", "decision": recs["decision"], "receipt": recs["receipt"]},
    )
    assert answer["accepted"] == 1 and len(answer["errors"]) == 2
    (exposure,) = edge.exposures()
    assert exposure["id"] == recs["decision"] and exposure["slot"] == "recs"
    assert exposure["path"] == "/" and exposure["propensity"] == recs["propensity"]
    assert exposure["ts"] == edge.io.now - 60_000  # when the page said so (the beacon's time)


# ---------------------------------------------------------------- defect 6: previews


def test_a_preview_is_exact_for_every_slot_marked_and_never_logged(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    forced = {"recs": "recs-kids", "hero": "hero-evening-edit", "landing": "home-outdoor"}
    edge.io.pages["/landing/outdoor"] = (
        200,
        "text/html; charset=utf-8",
        edge.io.pages["/"][2],  # the same template, so every slot is on it
    )
    engine = Engine.from_bytes(fixture_blob)
    kids = engine.slots["recs"].slot.variants[engine.slots["recs"].index_of["recs-kids"]].content
    tok = token(edge, **forced)  # type: ignore[arg-type]
    out = edge.request(f"/?edgepick_preview={tok}&utm_source=x")
    html: str = out.page.handle  # type: ignore[union-attr]
    assert kids in html and "data-edgepick-async" not in html  # async slot filled in place
    assert "The evening edit" in html
    assert edge.io.fetched[-1][0] == "http://origin.test/landing/outdoor?utm_source=x"
    assert "data-edgepick-preview-banner" in html and "recs=recs-kids" in html
    assert dict(out.headers)["x-edgepick-preview"] == "1" and "ep" not in edge.jar
    api = decide_api(edge, f"slots=recs&path=/&search=%3Fedgepick_preview%3D{tok}")
    assert [d["variant"] for d in api["decisions"]] == ["recs-kids"]
    assert "receipt" not in api["decisions"][0] and edge.shipped() == [] and not edge.jar


@pytest.mark.parametrize("kind", ["expired", "tampered", "foreign"])
def test_a_refused_preview_token_says_so(fixture_blob: bytes, kind: str) -> None:
    edge = Edge(fixture_blob)
    good = token(edge, hero="hero-evening-edit")
    tok = {
        "expired": token(edge, expires_in=-10, hero="hero-evening-edit"),
        "tampered": good[:-3] + ("A" if good[-3] != "A" else "B") + good[-2:],
        "foreign": token(edge, key=b"another-site", hero="hero-evening-edit"),
    }[kind]
    out = edge.request(f"/c/running?edgepick_preview={tok}")
    html: str = out.page.handle  # type: ignore[union-attr]
    reason = "expired" if kind == "expired" else "bad signature"
    assert dict(out.headers)["x-edgepick-preview"] == "invalid"
    assert f"edgepick preview refused ({reason})" in html and "The evening edit" not in html
    assert edge.shipped() == [] and "ep" not in edge.jar
    assert "edgepick_preview" not in edge.io.fetched[-1][0]  # never sent to the origin
    api = decide_api(edge, f"slots=recs&path=/&search=%3Fedgepick_preview%3D{tok}")
    assert api["preview_error"] == reason and edge.shipped() == []


def test_the_preview_token_is_not_forwarded_to_the_origin_for_assets(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    edge.request("/logo.png?v=2&edgepick_preview=abc", sec_fetch_dest="image")
    assert edge.io.forwarded == ["http://origin.test/logo.png?v=2"]


# ---------------------------------------------------------------- defect 9: distributions


def test_exposures_log_the_policys_distribution(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    for i in range(30):
        edge.jar.clear()
        edge.request("/", user_agent=f"Mozilla/5.0 agent {i}")
    drawn = [e for e in edge.exposures() if e["reason"] in ("policy", "fallback")]
    assert drawn and all(e["reason"] not in ("policy", "fallback") or "probs" in e for e in drawn)
    for e in drawn:
        probs = dict(zip(e["eligible"], e["probs"], strict=True))
        arm = Engine.from_bytes(fixture_blob).slots[e["slot"]].index_of[e["variant"]]
        assert math.isclose(probs[arm], e["propensity"], rel_tol=1e-5)
        assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-4)
    assert not any("probs" in e for e in edge.exposures() if e["reason"] == "holdout")


# ---------------------------------------------------------------- defect 8: no fake latency


def test_a_frozen_clock_reports_no_duration(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)  # FakeIO's clock is frozen, as workerd's is while computing
    out = edge.request("/")
    assert "dur=" not in dict(out.headers)["server-timing"]
    assert edge.exposures() and all("decision_us" not in e for e in edge.exposures())
    ticking = Edge(fixture_blob)
    ticking.io.cpu_step = 200.0
    out = ticking.request("/")
    assert dict(out.headers)["server-timing"].startswith("edgepick;dur=0.")
    assert all(e["decision_us"] > 0 for e in ticking.exposures())


# ---------------------------------------------------------------- defect 7: retries


class Flaky:
    """A collector that fails ``failures`` times (raising or answering ``status``)."""

    def __init__(self, failures: int, status: int = 0) -> None:
        self.failures, self.status, self.calls = failures, status, 0

    async def post(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            if self.status:
                return self.status
            raise ConnectionRefusedError("collector down")
        return 200


def run_delivery(flaky: Flaky, events_in_batch: int = 5) -> tuple[bool, DeliveryStats, list[float]]:
    stats, waits = DeliveryStats(), []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    done = asyncio.run(deliver(flaky.post, events_in_batch, stats, sleep))
    return done, stats, waits


def test_delivery_retries_with_exponential_backoff() -> None:
    done, stats, waits = run_delivery(Flaky(2))
    assert done and waits == [0.5, 1.0]
    assert (stats.shipped, stats.retried, stats.dropped, stats.pending) == (5, 10, 0, 0)
    done, stats, waits = run_delivery(Flaky(3, status=503))
    assert not done and waits == [0.5, 1.0] and (stats.shipped, stats.dropped) == (0, 5)
    assert stats.last_error == "collector answered 503"
    done, stats, waits = run_delivery(Flaky(1, status=400))  # refused: resending cannot help
    assert not done and waits == [] and stats.dropped == 5


def test_health_shows_the_delivery_counters(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    edge.stats.delivery.dropped = 3
    health = local.health(edge)
    assert health["events"]["dropped"] == 3
    assert set(health["events"]) >= {"shipped", "retried", "dropped", "invalid", "queued"}


def test_a_delivery_allowed_no_try_is_counted_as_dropped() -> None:
    stats = DeliveryStats()

    async def post() -> int:
        raise AssertionError("not to be called")

    async def sleep(_seconds: float) -> None:
        return None

    assert asyncio.run(deliver(post, 4, stats, sleep, tries=0)) is False
    assert (stats.dropped, stats.pending, stats.shipped) == (4, 0, 0)
