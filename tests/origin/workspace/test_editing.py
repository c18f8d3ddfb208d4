"""Edits through the forms, checked by the compiler, errors next to their fields."""

from __future__ import annotations

import re
from html import unescape

from starlette.testclient import TestClient

from origin.workspace import conditions
from tests.origin.workspace.conftest import Setup, csrf, rev


def _draft(setup: Setup, user: str = "alice") -> tuple[TestClient, str, str]:
    client = setup.client(user)
    token = csrf(client.get("/").text)
    done = client.post("/drafts", data={"csrf": token, "title": "Spring"})
    return client, token, done.headers["location"]


def _errors(html: str) -> dict[str, str]:
    found = re.findall(r'<p class="error" data-path="([^"]+)">([^<]*)</p>', html)
    return {path: unescape(message) for path, message in found}


def test_a_new_variant_is_saved_once_the_compiler_accepts_it(setup: Setup) -> None:
    client, token, url = _draft(setup)
    form = {
        "csrf": token,
        "rev": rev(setup),
        "id": "hero-spring",
        "content": "<p>Spring</p>",
        "status": "active",
    }
    bad = client.post(
        url + "/slots/hero/variants/new", data={**form, "rev": rev(setup), "weight": "-1"}
    )
    assert bad.status_code == 422
    path = "slots.hero.variants[8].weight"
    assert _errors(bad.text) == {path: "must be at least 0.0 (got -1)"}
    # shown next to the weight field: after its input, before the next field
    assert (
        bad.text.index('name="weight"')
        < bad.text.index(path)
        < bad.text.index('name="min_engagement"')
    )
    draft = setup.ws.drafts.all()[0]
    assert all(v["id"] != "hero-spring" for v in draft.config["slots"]["hero"]["variants"])
    text_weight = client.post(
        url + "/slots/hero/variants/new", data={**form, "rev": rev(setup), "weight": "lots"}
    )
    assert _errors(text_weight.text) == {path: "expected a number (got 'lots')"}
    good = client.post(
        url + "/slots/hero/variants/new", data={**form, "rev": rev(setup), "weight": "2"}
    )
    assert good.status_code == 303
    variants = setup.ws.drafts.all()[0].config["slots"]["hero"]["variants"]
    assert variants[-1] == {
        "id": "hero-spring",
        "content": "<p>Spring</p>",
        "status": "active",
        "weight": 2,
    }


def test_several_problems_each_by_its_field(setup: Setup) -> None:
    client, token, url = _draft(setup)
    answer = client.post(
        url + "/slots/hero/variants/0",
        data={
            "csrf": token,
            "rev": rev(setup),
            "id": "hero brand!",
            "content": "x",
            "status": "gone",
        },
    )
    found = _errors(answer.text)
    assert found["slots.hero.variants[0].id"].startswith("a variant id may use only")
    assert found["slots.hero.variants[0].status"].startswith("must be one of: draft")
    # and the slot's default no longer names a variant: a problem of another field, listed
    assert "slots.hero.default" in answer.text


def test_slot_policy_and_rules(setup: Setup) -> None:
    client, token, url = _draft(setup)
    bad = client.post(
        url + "/slots/cta",
        data={"csrf": token, "rev": rev(setup), "default": "cta-shop-now", "kind": "greedy"},
    )
    assert _errors(bad.text) == {
        "slots.cta.policy.kind": "must be one of: fixed, thompson, linear (got 'greedy')"
    }
    rule = client.post(
        url + "/slots/cta/rules",
        data={
            "csrf": token,
            "rev": rev(setup),
            "audience": "mobile",
            "action": "force",
            "variants": "nope",
        },
    )
    assert rule.status_code == 422
    assert "no such variant in this slot" in _errors(rule.text)["slots.cta.rules[0].variant"]
    ok = client.post(
        url + "/slots/cta/rules",
        data={
            "csrf": token,
            "rev": rev(setup),
            "audience": "mobile",
            "action": "force",
            "variants": "cta-shop-now",
        },
    )
    assert ok.status_code == 303
    cta = setup.ws.drafts.all()[0].config["slots"]["cta"]
    assert cta["rules"] == [{"audience": "mobile", "action": "force", "variant": "cta-shop-now"}]


def test_the_condition_builder_writes_growthbook_json(setup: Setup) -> None:
    client, token, url = _draft(setup)
    rows = {
        "csrf": token,
        "mode": "rows",
        "match": "any",
        "attribute": ["device", "country", ""],
        "operator": ["$eq", "$in", "$eq"],
        "value": ["mobile", "US, DE", ""],
    }
    shown = client.post(url + "/audience-json", data=rows)
    assert '"$or"' in shown.text and '"$in"' in shown.text
    saved = client.post(
        url + "/audiences/new", data={**rows, "rev": rev(setup), "name": "phones_or_home"}
    )
    assert saved.status_code == 303
    audience = setup.ws.drafts.all()[0].config["audiences"]["phones_or_home"]
    assert audience["condition"] == {
        "$or": [{"device": {"$eq": "mobile"}}, {"country": {"$in": ["US", "DE"]}}]
    }
    bad = client.post(
        url + "/audiences/mobile",
        data={
            **rows,
            "rev": rev(setup),
            "attribute": ["device"],
            "operator": ["$regex"],
            "value": ["(a+)+$"],
        },
    )
    assert bad.status_code == 422
    assert any(p.startswith("audiences.mobile.condition") for p in _errors(bad.text))


def test_conditions_read_back_into_rows() -> None:
    rows = [conditions.Row("visits", "$gte", "3"), conditions.Row("device", "$eq", "mobile")]
    built = conditions.build("all", rows)
    assert built == {"visits": {"$gte": 3}, "device": {"$eq": "mobile"}}
    assert conditions.rows(built) == ("all", rows)
    assert conditions.build("all", [*rows, conditions.Row("visits", "$lt", "9")]) == {
        "$and": [{"visits": {"$gte": 3}}, {"device": {"$eq": "mobile"}}, {"visits": {"$lt": 9}}]
    }
    quoted = conditions.rows({"utmSource": "3"})
    assert quoted is not None and conditions.build(*quoted) == {"utmSource": {"$eq": "3"}}
    assert conditions.rows({"$not": {"device": "bot"}}) is None  # edited as JSON instead


def test_nothing_is_edited_once_a_draft_is_in_review(setup: Setup) -> None:
    client, token, url = _draft(setup)
    client.post(
        url + "/step", data={"csrf": token, "rev": rev(setup), "step": "submit", "why": "ready"}
    )
    answer = client.post(
        url + "/slots/hero/variants/new",
        data={"csrf": token, "rev": rev(setup), "id": "x", "content": "x"},
    )
    assert answer.status_code == 404 and "it is review" in answer.text


def test_the_holdout_error_is_shown_at_the_holdout_field(setup: Setup) -> None:
    client, token, url = _draft(setup)
    answer = client.post(
        url + "/holdout", data={"csrf": token, "rev": rev(setup), "holdout": "0.7"}
    )
    assert answer.status_code == 422
    assert _errors(answer.text) == {"site.holdout": "must be between 0.0 and 0.5 (got 0.7)"}
    assert answer.text.index('name="holdout"') < answer.text.index('data-path="site.holdout"')
    assert (
        client.post(
            url + "/holdout", data={"csrf": token, "rev": rev(setup), "holdout": "0.1"}
        ).status_code
        == 303
    )
    assert setup.ws.drafts.all()[0].config["site"]["holdout"] == 0.1


def test_unknown_drafts_slots_and_variants_are_404s(setup: Setup) -> None:
    client, _, url = _draft(setup)
    for path in (
        "/drafts/d-00000000",
        "/drafts/nonsense",
        url + "/slots/nope",
        url + "/slots/cta/variants/99",
        url + "/slots/cta/variants/abc",
    ):
        assert client.get(path).status_code == 404, path


def test_an_audience_in_use_cannot_be_removed(setup: Setup) -> None:
    client, token, url = _draft(setup)
    refused = client.post(url + "/audiences/staff/delete", data={"csrf": token, "rev": rev(setup)})
    assert refused.status_code == 422
    paths = _errors(refused.text).keys() | set(re.findall(r"<code>([^<]+)</code>", refused.text))
    assert any(p.startswith("slots.") and p.endswith(".audience") for p in paths)
    assert "staff" in setup.ws.drafts.all()[0].config["audiences"]
    created = client.post(
        url + "/audiences/new",
        data={
            "csrf": token,
            "rev": rev(setup),
            "name": "unused",
            "attribute": "device",
            "operator": "$eq",
            "value": "tablet",
            "mode": "rows",
            "match": "all",
        },
    )
    assert created.status_code == 303
    removed = client.post(url + "/audiences/unused/delete", data={"csrf": token, "rev": rev(setup)})
    assert removed.status_code == 303
    assert "unused" not in setup.ws.drafts.all()[0].config["audiences"]


def test_what_people_type_is_escaped_on_every_page(setup: Setup) -> None:
    client, token, url = _draft(setup)
    evil = "<script>alert(1)</script>"
    form = {"csrf": token, "rev": rev(setup), "id": "cta-x", "content": evil, "status": "draft"}
    assert client.post(url + "/slots/cta/variants/new", data=form).status_code == 303
    described = {
        "csrf": token,
        "rev": rev(setup),
        "name": "odd",
        "description": evil,
        "mode": "json",
        "json": '{"path": "' + evil.replace("/", "\\/") + '"}',
    }
    assert client.post(url + "/audiences/new", data=described).status_code == 303
    for path in (url, url + "/slots/cta", url + "/slots/cta/variants/4", url + "/audiences/odd"):
        page = client.get(path).text
        assert evil not in page and "<script>alert" not in page, path
    assert "&lt;script&gt;" in client.get(url + "/slots/cta/variants/4").text
