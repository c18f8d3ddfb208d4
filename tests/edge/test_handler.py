"""The edge request logic under CPython, with in-memory bindings (tests/edge/fakes.py)."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from typing import Any

import pytest

from core import events, identity, preview
from core.snapshot import decode_header
from edge.client_js import SOURCE as CLIENT_JS
from edge.io import Outgoing
from tests.conftest import FIXTURES
from tests.edge import local
from tests.edge.helpers import decision_marks
from tests.edge.local import ENV, UA_MOBILE, pages

Edge = local.Edge  # the in-process edge (tests/edge/local.py; tests/cli/test_inspect.py too)


def decision_ids(out: Outgoing) -> list[str]:
    html: str = out.page.handle  # type: ignore[union-attr]
    return sorted(decision_marks(html))


def header(out: Outgoing, name: str) -> str | None:
    return next((v for k, v in out.headers if k == name), None)


def test_no_snapshot_serves_the_origin_page_untouched() -> None:
    edge = Edge(None)
    out = edge.request("/")
    assert out.untouched and out.page is not None
    assert out.page.handle == pages()["/"][2]
    assert edge.io.shipped == [] and header(out, "set-cookie") is None
    health = local.health(edge)
    assert health["ok"] is False and health["snapshot_errors"] >= 1


def test_personalized_page_cookie_and_exposures(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    edge.io.cpu_step = 150.0  # a clock that runs (CPython, Pyodide in Node): 150 us per read
    out = edge.request("/", user_agent=UA_MOBILE)
    html = out.page.handle  # type: ignore[union-attr]
    assert not out.untouched
    assert html.count("data-edgepick-decision=") == 4  # headline, promo, hero, cta (recs is async)
    assert "Loading recommendations" in html
    cookie = header(out, "set-cookie") or ""
    assert cookie.startswith("ep=v3.k2.") and "HttpOnly" in cookie and "Secure" in cookie
    assert "SameSite=Lax" in cookie and len(cookie.split(";")[0]) < 1024
    assert (header(out, "server-timing") or "").startswith("edgepick;dur=")
    exposures = edge.exposures()
    assert {e["slot"] for e in exposures} == {"landing", "headline", "promo", "hero", "cta"}
    assert all(events.problem(e) is None for e in exposures)
    assert all(
        f'data-edgepick-decision="{e["id"]}"' in html for e in exposures if e["slot"] != "landing"
    )
    assert {e["device"] for e in exposures} == {"mobile"}


def test_cookie_is_honoured_and_decisions_reused_in_session(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    first = edge.request("/")
    edge.io.shipped.clear()
    second = edge.request("/")
    assert edge.exposures() == []  # every slot reused from the session: nothing new to log
    assert decision_ids(first) == decision_ids(second)
    edge.io.now += 3600_000  # a new session decides afresh
    edge.request("/")
    assert len(edge.exposures()) == 5


def test_page_view_features_accumulate(fixture_blob: bytes) -> None:
    from core import cookie as cookies

    edge = Edge(fixture_blob)
    for _ in range(3):
        edge.request("/c/running")
    state = cookies.decode(edge.jar["ep"], edge.config.keyring, None).state  # type: ignore[arg-type]
    assert state.page_views == 3 and dict(state.affinity)["running"] > 2.9
    assert state.stage == "browse"


@pytest.mark.parametrize(
    "value",
    ["v1.k2.AAAA.BBBB", "garbage", "", "x" * 5000, "v1.k9.e30.AAAA"],
    ids=["tampered", "garbage", "empty", "oversized", "unknown-key"],
)
def test_bad_cookies_are_ignored_without_error(fixture_blob: bytes, value: str) -> None:
    edge = Edge(fixture_blob)
    out = edge.request("/", cookie=f"ep={value}")
    assert out.status == 200 and not out.untouched
    assert (header(out, "set-cookie") or "").startswith("ep=v3.k2.")
    assert edge.stats.errors == 0


def test_truncated_valid_cookie_is_refused(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    edge.request("/")
    good = edge.jar["ep"]
    out = edge.request("/", cookie=f"ep={good[:-3]}", keep=False)
    assert out.status == 200
    assert edge.stats.errors == 0


def test_rotated_key_is_accepted_and_resigned(fixture_blob: bytes) -> None:
    old_env = {**ENV, "COOKIE_KEYS": "k1:old-cookie-secret"}
    old = Edge(fixture_blob, old_env)
    old.request("/")
    edge = Edge(fixture_blob)
    out = edge.request("/", cookie=f"ep={old.jar['ep']}")
    assert (header(out, "set-cookie") or "").startswith("ep=v3.k2.")


def test_global_privacy_control_means_no_stored_features(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    out = edge.request("/", sec_gpc="1", cookie="ep=v1.k2.abc.def")
    assert header(out, "set-cookie") == "ep=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure"
    assert out.page.handle.count("data-edgepick-decision=") == 4  # type: ignore[union-attr]
    assert edge.exposures() == []  # nothing to attribute clicks to: nothing logged


def test_page_slot_serves_a_variant_path_without_redirect(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    served = set()
    for i in range(40):
        edge.jar.clear()
        out = edge.request("/", keep=False, user_agent=f"agent {i}")
        assert out.status == 200
        served.add(edge.io.fetched[-1][0])
    assert served >= {"http://origin.test/", "http://origin.test/landing/outdoor"}


def test_header_mode_forwards_decisions_to_the_origin(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    edge.request("/c/running")
    _url, headers = edge.io.fetched[-1]
    assert {"x-edgepick-headline", "x-edgepick-hero", "x-edgepick-cta"} <= set(headers)


def test_non_html_is_passed_through(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    out = edge.request("/logo.png")
    assert out.page.handle == "PNG..." and edge.exposures() == []  # type: ignore[union-attr]


def test_decide_api_and_beacon(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    edge.request("/")
    out = edge.request("/_edgepick/decide?slots=recs,nope&path=/")
    body = json.loads(out.body)  # type: ignore[arg-type]
    assert [d["slot"] for d in body["decisions"]] == ["recs"] and body["unknown"] == ["nope"]
    recs = body["decisions"][0]
    assert recs["content"].startswith("<ul class='recs'>")
    edge.io.shipped.clear()
    beacon = json.dumps(
        {
            "events": [
                {"type": "click", "decision": recs["decision"], "id": "c1"},
                {"type": "conversion", "decision": recs["decision"], "value": 42.0},
                {"type": "click", "decision": "forged"},
                {
                    "type": "identify",
                    "token": identity.sign("user-77", edge.io.now // 1000 + 60, b"identity-secret"),
                },
                {"type": "identify", "user": "mallory", "token": "forged.1.x"},
            ]
        }
    ).encode()
    reply = edge.request("/_edgepick/events", method="POST", body=beacon)
    result = json.loads(reply.body)  # type: ignore[arg-type]
    assert reply.status == 202 and result["accepted"] == 3 and len(result["errors"]) == 2
    assert "not a valid identity token" in result["errors"][1]
    shipped = json.loads(edge.io.shipped[0][1])["events"]
    assert [e["type"] for e in shipped] == ["click", "conversion", "identify"]
    from core import cookie as cookies

    state = cookies.decode(edge.jar["ep"], edge.config.keyring, None).state  # type: ignore[arg-type]
    assert state.user_id == "user-77"


def test_beacon_without_cookie_accepts_nothing(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    body = json.dumps({"events": [{"type": "click", "decision": "x"}]}).encode()
    out = edge.request("/_edgepick/events", method="POST", body=body)
    assert json.loads(out.body)["accepted"] == 0 and edge.io.shipped == []  # type: ignore[arg-type]


def test_preview_forces_variants_and_is_never_logged(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    token = preview.encode(
        preview.Preview(
            expires=edge.io.now // 1000 + 600,
            persona={"visits": 4, "affinity": {"hiking": 5}, "context": {"country": "DE"}},
            variants={"hero": "hero-evening-edit"},
        ),
        b"preview-secret",
    )
    out = edge.request(f"/?edgepick_preview={token}")
    html = out.page.handle  # type: ignore[union-attr]
    assert "The evening edit" in html  # a draft variant, visible only in preview
    assert header(out, "x-edgepick-preview") == "1" and header(out, "set-cookie") is None
    assert header(out, "cache-control") == "private, no-store"
    assert edge.io.shipped == []
    expired = preview.encode(
        preview.Preview(expires=1, variants={"hero": "hero-evening-edit"}), b"preview-secret"
    )
    out = edge.request(f"/?edgepick_preview={expired}")
    assert "The evening edit" not in out.page.handle  # type: ignore[union-attr]


def test_corrupt_new_snapshot_keeps_the_last_good_one(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    good = edge.io.kv["snap/current"]
    edge.request("/")
    edge.io.kv["snap/current"] = "0" * 20
    edge.io.kv["snap/" + "0" * 20] = b"\x93garbage"
    out = edge.request("/")
    assert not out.untouched and out.page.handle.count("data-edgepick-decision=") == 4  # type: ignore[union-attr]
    health = local.health(edge)
    assert health["snapshot"] == good and "not valid msgpack" in health["last_snapshot_error"]


def test_a_snapshot_that_fails_to_prepare_keeps_the_last_good_one(
    fixture_blob: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only decode errors: anything raised while preparing a new snapshot is counted as a
    snapshot error, and the edge goes on serving the last good one."""
    from compile.site import compile_site, load_toml
    from core.engine import Engine
    from core.snapshot import encode_snapshot

    edge = Edge(fixture_blob)
    good = edge.io.kv["snap/current"]
    edge.request("/")
    config = load_toml(FIXTURES / "site.toml")
    config["site"]["epoch"] = 2
    blob = encode_snapshot(compile_site(config, None))
    sid = decode_header(blob)[0].id
    edge.io.kv.update({"snap/current": sid, f"snap/{sid}": blob})

    def broken(blob: bytes) -> Engine:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(Engine, "from_bytes", staticmethod(broken))
    out = edge.request("/")
    assert not out.untouched and out.page.handle.count("data-edgepick-decision=") == 4  # type: ignore[union-attr]
    health = local.health(edge)
    assert health["snapshot"] == good and health["snapshot_errors"] >= 1
    assert "could not be prepared (RecursionError" in health["last_snapshot_error"]


def test_rollback_switches_the_snapshot(fixture_blob: bytes) -> None:
    from compile.site import compile_site, load_toml
    from core.snapshot import encode_snapshot

    config = load_toml(FIXTURES / "site.toml")
    config["slots"]["hero"]["variants"][0]["content"] = "<h2>Version two</h2>"
    blob2 = encode_snapshot(compile_site(config), parent=decode_header(fixture_blob)[0].id)
    edge = Edge(fixture_blob)
    first = edge.io.kv["snap/current"]
    sid2 = decode_header(blob2)[0].id
    edge.io.kv.update({"snap/current": sid2, f"snap/{sid2}": blob2})
    assert local.health(edge)["snapshot"] == sid2
    edge.io.kv["snap/current"] = first
    assert local.health(edge)["snapshot"] == first


def test_exceptions_fail_open(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)

    async def broken(*_: Any) -> Any:
        raise RuntimeError("rewriter exploded")

    edge.io.rewrite = broken  # type: ignore[method-assign, assignment]
    out = edge.request("/")
    assert out.untouched and out.page.handle == pages()["/"][2]  # type: ignore[union-attr]
    assert edge.stats.errors == 1 and "rewriter exploded" in edge.stats.last_error


def test_client_script_is_small(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    out = edge.request("/_edgepick/client.js")
    assert out.body == CLIENT_JS
    # the budget: 5 KB gzipped for edgepick's own script (web-vitals comes on top; docs/signals.md)
    assert len(gzip.compress(CLIENT_JS.encode(), 9)) < 5 * 1024


def test_missing_keys_mean_no_cookie(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob, {k: v for k, v in ENV.items() if k != "COOKIE_KEYS"})
    out = edge.request("/")
    assert header(out, "set-cookie") is None
    assert "COOKIE_KEYS" in edge.config.problems[0]
    assert replace(edge.config, problems=()).keyring is None


def test_a_slot_first_shown_on_a_later_page_is_logged_then(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    edge.request("/c/running")  # the category page has no hero and no cta
    assert {e["slot"] for e in edge.exposures()} == {"headline", "promo"}
    edge.io.shipped.clear()
    edge.request("/")
    assert {e["slot"] for e in edge.exposures()} == {"landing", "hero", "cta"}


def test_identified_visitor_gets_the_stitched_profile(fixture_blob: bytes) -> None:
    from core import cookie as cookies
    from core.features import VisitorState
    from core.profile import encode_profile, profile_key

    edge = Edge(fixture_blob)
    profile = VisitorState(
        "other-device",
        visits=9,
        page_views=80,
        first_seen=1_700_000_000,
        last_seen=edge.io.now // 1000 - 3600,
        stage="customer",
        affinity=(("hiking", 12.0),),
        flags=frozenset({"buyer"}),
        user_id="user-9",
    )
    edge.io.kv[profile_key("user-9")] = encode_profile(profile)
    keyring = edge.config.keyring
    assert keyring is not None
    here = VisitorState(
        "this-device",
        visits=1,
        page_views=1,
        first_seen=edge.io.now // 1000 - 7200,
        last_seen=edge.io.now // 1000 - 7200,
        user_id="user-9",
    )
    out = edge.request("/", cookie=f"ep={cookies.encode(here, keyring)}")
    state = cookies.decode(header(out, "set-cookie").split(";")[0][3:], keyring, here).state  # type: ignore[union-attr]
    assert state.visitor_id == "this-device" and state.visits == 9 and state.stage == "customer"
    assert dict(state.affinity)["hiking"] > 11 and "buyer" in state.flags
    edge.io.kv[profile_key("user-9")] = b"\x00garbage"
    out = edge.request("/", cookie=f"ep={cookies.encode(here, keyring)}")
    assert out.status == 200 and edge.stats.errors == 0


def test_other_methods_are_forwarded_untouched(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    out = edge.request("/c/running", method="POST", body=b"qty=1")
    assert out.untouched and edge.io.forwarded == ["http://origin.test/c/running"]
    assert edge.io.shipped == [] and header(out, "set-cookie") is None


def test_a_missing_variant_page_falls_back_to_the_url_page(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    del edge.io.pages["/landing/outdoor"], edge.io.pages["/landing/deals"]
    for i in range(30):
        edge.jar.clear()
        out = edge.request("/", keep=False, user_agent=f"agent {i}")
        assert out.status == 200 and "data-edgepick-decision" in out.page.handle  # type: ignore[union-attr]
    assert all(e["variant"] == "home-standard" for e in edge.exposures() if e["slot"] == "landing")


def test_campaign_source_is_kept_as_a_flag(fixture_blob: bytes) -> None:
    from core import cookie as cookies

    edge = Edge(fixture_blob)
    edge.request("/?utm_source=Newsletter&utm_medium=email")
    edge.request("/c/running")
    state = cookies.decode(edge.jar["ep"], edge.config.keyring, None).state  # type: ignore[arg-type]
    assert "utm:newsletter" in state.flags


def test_assets_are_forwarded_untouched_and_not_counted(fixture_blob: bytes) -> None:
    from core import cookie as cookies

    edge = Edge(fixture_blob)
    edge.request("/", sec_fetch_dest="document")
    for _ in range(3):
        out = edge.request("/logo.png", sec_fetch_dest="image", accept="image/avif,image/*")
        assert out.untouched and header(out, "set-cookie") is None
    edge.request("/c/running", accept="text/html,application/xhtml+xml")
    state = cookies.decode(edge.jar["ep"], edge.config.keyring, None).state  # type: ignore[arg-type]
    assert state.page_views == 2


def test_page_slot_paths_match_whole_segments() -> None:
    from core.decide import applies

    assert applies(("/spring",), "/spring") and applies(("/spring",), "/spring/sale")
    assert not applies(("/spring",), "/springfield")
    assert applies(("/",), "/") and not applies(("/",), "/about")
    assert applies(("/c/",), "/c/running") and applies((), "/anything")


def test_reused_decisions_still_obey_the_rules(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    for i in range(200):  # a US visitor who was shown the price-match promo
        edge.jar.clear()
        edge.request("/", user_agent=f"agent {i}")
        edge.io.shipped.clear()
        page = edge.request("/c/running", user_agent=f"agent {i}")
        if "We match it" in page.page.handle:  # type: ignore[union-attr]
            break
    else:
        pytest.fail("no visitor got promo-price-match")
    out = edge.request("/c/running", country="DE")  # same session, now from the EU
    assert "We match it" not in out.page.handle  # type: ignore[union-attr]
    assert [e["slot"] for e in edge.exposures()] == ["promo"]  # decided afresh, and logged


def test_many_campaign_sources_stay_within_the_cookie_budget(fixture_blob: bytes) -> None:
    from core import cookie as cookies

    edge = Edge(fixture_blob)
    for i in range(12):
        out = edge.request(f"/?utm_source={i}-{'campaign-' * 6}")
        assert header(out, "set-cookie") is not None and edge.stats.errors == 0
    state = cookies.decode(edge.jar["ep"], edge.config.keyring, None).state  # type: ignore[arg-type]
    assert sum(f.startswith("utm:") for f in state.flags) == 3
    assert all(len(f) <= 28 for f in state.flags) and state.decisions


def test_odd_preview_tokens_are_refused_visibly(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    out = edge.request("/?edgepick_preview=abc.%C3%A9")
    assert not out.untouched and edge.stats.errors == 0
    assert header(out, "x-edgepick-preview") == "invalid"
    assert "edgepick preview refused (malformed token)" in out.page.handle  # type: ignore[union-attr]


def test_bots_and_head_requests_are_not_logged(fixture_blob: bytes) -> None:
    edge = Edge(fixture_blob)
    edge.request("/", user_agent="Googlebot/2.1 (+http://www.google.com/bot.html)")
    head = edge.request("/", method="HEAD")
    assert edge.exposures() == [] and edge.page_views() == []
    # the visitor's own request (a HEAD: edge.interop forwards its method) goes to the origin,
    # its answer back untouched (no cookie either)
    assert head.untouched and edge.io.forwarded[-1] == "http://origin.test/"
    assert not [name for name, _ in head.headers if name == "set-cookie"]


def test_decide_api_sees_the_asking_page_context(fixture_blob: bytes) -> None:
    """The page's own query string reaches the rules: newsletter visitors get the restricted
    promos (fixtures/site.toml: audience newsletter restricts promo to two variants)."""
    edge = Edge(fixture_blob)
    seen = set()
    for i in range(40):
        edge.jar.clear()
        out = edge.request(
            "/_edgepick/decide?slots=promo&path=/c/running&search=%3Futm_source%3Dnewsletter"
            "&referrer=https%3A%2F%2Fwww.google.com%2F",
            user_agent=f"agent {i}",
        )
        (decision,) = json.loads(out.body)["decisions"]  # type: ignore[arg-type]
        if decision["reason"] != "holdout":
            seen.add(decision["variant"])
    assert seen and seen <= {"promo-member-code", "promo-free-shipping"}


def test_health_details_are_for_the_health_key_only(fixture_blob: bytes) -> None:
    """Anyone gets ok, the snapshot and its age; error texts, counters and configuration
    problems need ``x-edgepick-health-key``."""
    edge = Edge(fixture_blob)
    public = json.loads(edge.request("/_edgepick/health").body)  # type: ignore[arg-type]
    assert set(public) == {"ok", "snapshot", "age_seconds"}
    wrong = edge.request("/_edgepick/health", x_edgepick_health_key="guess")
    assert set(json.loads(wrong.body)) == set(public)  # type: ignore[arg-type]
    right = edge.request("/_edgepick/health", x_edgepick_health_key="health-secret")
    details = json.loads(right.body)  # type: ignore[arg-type]
    assert {"errors", "last_error", "events", "config_problems"} <= set(details)
    unset = Edge(fixture_blob, {k: v for k, v in ENV.items() if k != "HEALTH_KEY"})
    empty = unset.request("/_edgepick/health", x_edgepick_health_key="")
    assert set(json.loads(empty.body)) == set(public)  # type: ignore[arg-type]


@pytest.mark.parametrize("agent", ["curl/8.5.0", "Googlebot/2.1 (+http://www.google.com/bot.html)"])
def test_bots_and_tools_get_the_defaults_no_cookie_and_no_log(
    fixture_blob: bytes, engine: Any, agent: str
) -> None:
    edge = Edge(fixture_blob)
    out = edge.request("/", user_agent=agent)
    assert header(out, "set-cookie") is None and edge.io.shipped == []
    html = out.page.handle  # type: ignore[union-attr]
    assert len(decision_marks(html)) == 4  # filled, with each slot's default content:
    for name in ("headline", "hero", "cta"):
        slot = engine.slots[name].slot
        default = next(v for v in slot.variants if v.id == slot.default)
        assert default.content in html, name


def test_a_beacon_with_a_valid_cookie_counts_whatever_its_user_agent(fixture_blob: bytes) -> None:
    """Browsers send unload beacons (vitals) without the page's User-Agent override: a valid
    cookie, set by a person's page view, is what the beacon goes by (found by the e2e suite)."""
    edge = Edge(fixture_blob)
    edge.request("/")  # a browser's page view: the cookie
    body = json.dumps({"events": [{"type": "vitals", "id": "p1", "path": "/", "lcp": 120.0}]})
    out = edge.request(
        "/_edgepick/events", method="POST", body=body.encode(), user_agent="HeadlessChrome/146"
    )
    assert out.status == 202 and json.loads(out.body)["accepted"] == 1  # type: ignore[arg-type]
