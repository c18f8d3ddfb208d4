"""The edge as a transparent proxy: pages stream, the visitor's headers reach the origin, a
visitor's ``x-edgepick-*`` headers do not, caching is left alone when nothing was personalized,
a slow origin gets a clear 504, and health answers 503 when it is not ok."""

from __future__ import annotations

from collections.abc import Mapping

from core import events
from edge.config import EdgeConfig, load
from edge.io import Completion, Outgoing, Page, Rewritten
from tests.edge import local
from tests.edge.helpers import cookie_state
from tests.edge.local import ENV

Edge = local.Edge
HTML = "text/html; charset=utf-8"
TWO_SLOTS = (
    "<html><head><title>t</title></head><body>"
    '<h1 data-edgepick-slot="headline">Hello</h1>'
    '<div data-edgepick-slot="hero">Hero</div>'
    "</body></html>"
)
ONE_SLOT = TWO_SLOTS.replace('<div data-edgepick-slot="hero">Hero</div>', "")
NO_SLOT = "<html><head><title>About</title></head><body>About us</body></html>"


def header(out: Outgoing, name: str) -> str | None:
    return next((v for k, v in out.headers if k == name), None)


def new_visitor(edge: local.Edge, path: str) -> Outgoing:
    edge.jar.clear()
    return edge.request(path)


def remembered(edge: local.Edge) -> set[str]:
    assert edge.config.keyring is not None
    state = cookie_state(edge.jar["ep"], edge.config.keyring)
    return {slot for slot, *_ in state.decisions}


def test_a_path_seen_before_streams_and_logs_only_what_the_page_showed(
    fixture_blob: bytes,
) -> None:
    edge = Edge(fixture_blob)
    edge.io.pages["/two"] = (200, HTML, TWO_SLOTS)
    new_visitor(edge, "/two")  # first logged view of /two in this isolate: buffered, learnt
    assert edge.io.streamed == 0
    assert edge.stats.presence.expected("/two") == frozenset({"headline", "hero"})
    edge.io.shipped.clear()

    out = new_visitor(edge, "/two")  # now it streams
    assert edge.io.streamed == 1
    assert {e["slot"] for e in edge.exposures()} == {"headline", "hero"}
    assert remembered(edge) == {"headline", "hero"}
    assert header(out, "cache-control") == "private, no-store"

    # the page drops a slot: the streamed view expected it (its cookie remembers it), but only
    # what the page really showed is logged, and the isolate learns the page's new slots
    edge.io.pages["/two"] = (200, HTML, ONE_SLOT)
    edge.io.shipped.clear()
    new_visitor(edge, "/two")
    assert {e["slot"] for e in edge.exposures()} == {"headline"}
    assert remembered(edge) == {"headline", "hero"}
    assert edge.stats.presence.mismatches == 1
    edge.io.shipped.clear()
    new_visitor(edge, "/two")
    assert {e["slot"] for e in edge.exposures()} == {"headline"} and remembered(edge) == {
        "headline"
    }
    health = local.health(edge)
    pages = health["pages"]
    assert pages["streamed"] == 3 and pages["buffered"] == 1 and pages["mismatches"] == 1
    assert set(health["precomputed"]) == {"hits", "misses", "errors"}


def test_a_page_view_is_logged_once_whether_buffered_or_streamed(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    edge.io.pages["/two"] = (200, HTML, TWO_SLOTS)
    for _ in range(3):
        new_visitor(edge, "/two")
    views = [e for e in edge.shipped() if e["type"] == events.PAGE_VIEW]
    assert len(views) == 3 and len({e["id"] for e in views}) == 3
    assert edge.io.streamed == 2


def test_the_visitors_headers_reach_the_origin_but_not_forged_edgepick_ones(
    fixture_blob: bytes,
) -> None:
    edge = Edge(fixture_blob)
    edge.request(
        "/",
        authorization="Bearer abc",
        if_none_match='"v1"',
        x_forwarded_for="203.0.113.9",
        x_edgepick_hero="hero-price-drop",  # a visitor trying to pick a variant at the origin
        connection="keep-alive",
        accept_language="de",
    )
    _url, sent = edge.io.fetched[-1]
    assert sent["authorization"] == "Bearer abc" and sent["if-none-match"] == '"v1"'
    assert sent["x-forwarded-for"] == "203.0.113.9" and sent["accept-language"] == "de"
    assert "connection" not in sent
    assert sent["x-edgepick-hero"] != "hero-price-drop"  # the edge's own decision
    assert all(v != "hero-price-drop" for k, v in sent.items() if k.startswith("x-edgepick-"))


def test_untouched_requests_drop_forged_edgepick_headers(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    out = edge.request("/logo.png", x_edgepick_hero="forged", accept="image/png")
    assert out.untouched and edge.io.dropped == ["x-edgepick-hero"]


def test_a_page_nothing_personalized_is_private_not_no_store(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    edge.io.pages["/about"] = (200, HTML, NO_SLOT)
    out = new_visitor(edge, "/about")
    # nothing personalized, but the reply sets the visitor's cookie: no shared cache may keep
    # it; the browser may, as the origin said (not no-store)
    assert header(out, "cache-control") == "private"
    assert header(out, "set-cookie")  # the view still counts
    out = new_visitor(edge, "/")
    assert header(out, "cache-control") == "private, no-store"


def test_a_slow_origin_gets_a_clear_504_and_is_counted(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob, {**ENV, "ORIGIN_TIMEOUT_SECONDS": "2.5"})
    # not "/": a page slot serves some visitors a landing variant's path from there instead
    edge.io.slow.add("/c/running")
    out = edge.request("/c/running")
    assert out.status == 504 and "did not answer within 2.5 s" in str(out.body)
    assert header(out, "retry-after") == "5" and edge.io.shipped == []
    edge.io.slow.add("/logo.png")
    assert edge.request("/logo.png", accept="image/png").status == 504
    assert local.health(edge)["origin_timeouts"] == 2


def test_origin_timeout_setting_is_validated() -> None:
    def settings(value: str) -> EdgeConfig:
        def variable(name: str) -> str:
            return value if name == "ORIGIN_TIMEOUT_SECONDS" else ""

        return load(variable)

    for bad in ("soon", "0", "1e9", "nan"):
        config = settings(bad)
        assert config.origin_timeout_ms == 10_000
        assert any("ORIGIN_TIMEOUT_SECONDS" in p for p in config.problems)
    assert settings("0.5").origin_timeout_ms == 500


def test_health_answers_503_when_not_ok(fixture_blob: bytes) -> None:
    assert Edge(None).request("/_edgepick/health").status == 503
    assert Edge(fixture_blob).request("/_edgepick/health").status == 200
    detailed = Edge(None).request("/_edgepick/health", x_edgepick_health_key=ENV["HEALTH_KEY"])
    assert detailed.status == 503


def test_pages_are_known_by_the_origin_path_they_came_from(fixture_blob: bytes) -> None:
    """The URL "/" serves a landing variant's page to some visitors (a page slot): each origin
    path's markup is learnt on its own, so no streamed view expects another page's slots."""
    edge = Edge(fixture_blob)
    for _ in range(30):
        new_visitor(edge, "/")
    presence = edge.stats.presence
    assert {"/", "/landing/outdoor"} <= set(presence.paths)
    assert presence.mismatches == 0 and presence.streamed >= 20


def test_a_streamed_page_that_gains_slots_is_still_private(fixture_blob: bytes) -> None:
    """The isolate learnt the page held no slots; this view's page holds three: its content is
    filled while it streams, so the reply is no-store whatever the origin said."""
    edge = Edge(fixture_blob)
    edge.io.pages["/flip"] = (200, HTML, NO_SLOT)
    new_visitor(edge, "/flip")  # buffered: learns "no slots"
    edge.io.pages["/flip"] = (200, HTML, TWO_SLOTS)
    out = new_visitor(edge, "/flip")
    assert edge.io.streamed == 1
    assert header(out, "cache-control") == "private, no-store"


def test_a_bundled_snapshot_reports_its_age_from_when_kv_confirmed_it(fixture_blob: bytes) -> None:
    from core.engine import Engine
    from edge.snapshots import SnapshotCache

    engine = Engine.from_bytes(fixture_blob)
    cache = SnapshotCache(ttl_ms=0)
    cache.engines[engine.snapshot_id], cache.current = engine, engine.snapshot_id  # as interop

    async def kv_get(key: str, binary: bool) -> bytes | str | None:
        return engine.snapshot_id if key == "snap/current" else None

    import asyncio

    assert asyncio.run(cache.engine(kv_get, 1_790_000_000_000)) is engine
    assert cache.loaded_at_ms == 1_790_000_000_000 and cache.errors == 0


def test_a_streamed_page_s_events_wait_for_its_end(fixture_blob: bytes) -> None:
    """A streamed page's events go once its document has passed, or the wait for it is over,
    with an exposure only for the slots the rewriter met by then; an incomplete page teaches
    the isolate nothing, and its end is told once."""
    edge = Edge(fixture_blob)
    edge.io.pages["/two"] = (200, HTML, TWO_SLOTS)
    new_visitor(edge, "/two")  # learnt, buffered
    streaming: list[tuple[Completion, set[str]]] = []
    rewrite = edge.io.rewrite

    async def rewrite_later(  # the fake rewriter's page, its document's end still to come
        page: Page,
        fills: Mapping[str, tuple[str, str, str]],
        banner: str = "",
        appends: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Rewritten:
        done = await rewrite(page, fills, banner, appends, stream)
        if not stream:
            return done
        streaming.append((Completion(), set()))
        return Rewritten(done.page, streaming[-1][1], streaming[-1][0])

    edge.io.rewrite = rewrite_later  # type: ignore[method-assign]
    edge.io.shipped.clear()
    out = new_visitor(edge, "/two")
    assert out.status == 200 and len(streaming) == 1
    assert edge.io.shipped == []  # the document has not passed yet
    end, met = streaming[0]
    met.add("headline")  # the wait ran out after the first slot
    assert end.finish(False)
    assert {e["slot"] for e in edge.exposures()} == {"headline"}
    assert len(edge.page_views()) == 1
    assert edge.stats.presence.expected("/two") == frozenset({"headline", "hero"})
    assert not end.finish(True) and len(edge.io.shipped) == 1
