"""Slots through the forms: policy kinds and their settings, new slots, removing slots; every
edit checked by the compiler, each problem shown at the field it concerns."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from starlette.testclient import TestClient

from core.model import LinearPolicy
from core.snapshot import decode_snapshot
from origin.workspace import editing
from origin.workspace.accounts import User
from tests.origin.workspace.conftest import Setup, csrf, rev
from tests.origin.workspace.test_editing import _draft, _errors

ALICE, BOB = User("alice", "editor"), User("bob", "approver")


def _slot(setup: Setup, name: str) -> dict[str, Any]:
    table: dict[str, Any] = setup.ws.drafts.all()[0].config["slots"][name]
    return table


def _post(client: TestClient, url: str, setup: Setup, token: str, **fields: Any) -> Any:
    return client.post(url, data={"csrf": token, "rev": rev(setup), **fields})


LINEAR = {
    "default": "cta-shop-now",
    "kind": "linear",
    "seed": "cta-copy-test",  # shown, but a linear policy does not read it
    "floor": "0.1",
    "features": "bias\nnew_visitor, device:mobile",
    "exploration": "softmax",
    "temperature": "0.2",
    "gamma": "",
    "cold_start": "false",
    "segments_shown": "1",
}


def test_a_fixed_split_becomes_a_linear_policy_with_its_settings(setup: Setup) -> None:
    client, token, url = _draft(setup)
    page = client.get(url + "/slots/cta")
    assert page.status_code == 200
    for field in ("features", "exploration", "temperature", "gamma", "cold_start", "selector"):
        assert f'name="{field}"' in page.text, field
    done = _post(client, url + "/slots/cta", setup, token, **LINEAR)
    assert done.status_code == 303, done.text
    assert _slot(setup, "cta")["policy"] == {
        "kind": "linear",
        "floor": 0.1,
        "features": ["bias", "new_visitor", "device:mobile"],
        "exploration": "softmax",
        "temperature": 0.2,
        "cold_start": False,
    }
    shown = client.get(url + "/slots/cta").text  # the form shows what was saved
    assert "bias\nnew_visitor\ndevice:mobile</textarea>" in shown
    assert '<option value="false" selected>' in shown
    overview = client.get(url).text  # the slots table says which policy decides
    assert re.search(r'/slots/cta">cta</a></td>\s*<td>element</td><td>linear</td>', overview)
    assert (  # the change in words, before anyone publishes
        "cta: the policy is now linear (was fixed): features bias, new_visitor, device:mobile; "
        "exploration softmax; temperature 0.2; gamma 50; floor 0.1; cold start off."
    ) in unescape(overview)
    # and back to a fixed split: the linear settings go, the seed comes back
    back = {**LINEAR, "kind": "fixed"}
    assert _post(client, url + "/slots/cta", setup, token, **back).status_code == 303
    assert _slot(setup, "cta")["policy"] == {"kind": "fixed", "seed": "cta-copy-test"}
    audit = [e for e in setup.ws.registry.audit_log() if e["action"] == "draft-edit"]
    assert audit[-1]["reason"] == "slot cta: settings"


def test_thompson_segments_are_checked_audiences(setup: Setup) -> None:
    client, token, url = _draft(setup)
    page = client.get(url + "/slots/headline").text
    assert 'name="segments" value="mobile" checked' in page
    assert 'name="segments" value="runners" >' in page
    form = {"kind": "thompson", "floor": "0.1", "segments_shown": "1"}
    two = _post(client, url + "/slots/headline", setup, token, **form, segments=["mobile", "eu"])
    assert two.status_code == 303
    assert _slot(setup, "headline")["policy"] == {
        "kind": "thompson",
        "floor": 0.1,
        "segments": ["mobile", "eu"],
    }
    none = _post(client, url + "/slots/headline", setup, token, **form)  # every box unchecked
    assert none.status_code == 303
    assert _slot(setup, "headline")["policy"] == {"kind": "thompson", "floor": 0.1}


def test_a_settings_change_is_said_in_words(setup: Setup) -> None:
    client, token, url = _draft(setup)
    assert _post(client, url + "/slots/recs", setup, token, gamma="10").status_code == 303
    assert "recs: policy gamma 10 (was 40)." in client.get(url).text
    segments = {"kind": "thompson", "floor": "0.1", "segments_shown": "1"}
    assert _post(client, url + "/slots/headline", setup, token, **segments).status_code == 303
    assert "headline: policy segments none (was mobile)." in client.get(url).text


def test_a_form_without_the_policy_fields_keeps_them(setup: Setup) -> None:
    client, token, url = _draft(setup)
    before = _slot(setup, "hero")["policy"]
    done = _post(client, url + "/slots/hero", setup, token, default="hero-running")
    assert done.status_code == 303
    assert _slot(setup, "hero")["policy"] == before
    assert _slot(setup, "hero")["default"] == "hero-running"


# (slot, field, typed, the problem's path, its message as shown, the next field on the page);
# cta is a fixed split, switched to linear for the features
REFUSED = [
    ("cta", "features", "bias\naffinity", "policy.features[1]", "'affinity' needs", "exploration"),
    ("cta", "features", "bias visits:3", "policy.features[1]", "'visits' takes no", "exploration"),
    ("cta", "features", "", "policy.features", "required", "exploration"),
    ("hero", "exploration", "greedy", "policy.exploration", "must be one of: ", "temperature"),
    ("hero", "temperature", "0", "policy.temperature", "must be at least 1e-06", "gamma"),
    ("recs", "gamma", "-1", "policy.gamma", "must be at least 0.0 (got -1)", "cold_start"),
    ("recs", "gamma", "lots", "policy.gamma", "expected a number (got 'lots')", "cold_start"),
    ("hero", "cold_start", "maybe", "policy.cold_start", "expected true or false (got", None),
    ("hero", "floor", "2", "policy.floor", "must be between 0.0 and 1.0 (got 2)", "segments"),
    ("cta", "selector", "h1 + p", "selector", "HTMLRewriter supports type, class, id", "placement"),
    ("cta", "placement", "sideways", "placement", "must be one of: inline, async", "kind"),
]  # fmt: skip


@pytest.mark.parametrize(("slot", "field", "typed", "path", "message", "after"), REFUSED)
def test_each_policy_setting_is_checked_and_its_error_shown_at_its_field(
    setup: Setup, slot: str, field: str, typed: str, path: str, message: str, after: str | None
) -> None:
    client, token, url = _draft(setup)
    before = _slot(setup, slot)
    kind = {"kind": "linear"} if field == "features" else {}
    answer = _post(client, url + f"/slots/{slot}", setup, token, **kind, **{field: typed})
    assert answer.status_code == 422
    full = f"slots.{slot}.{path}"
    errors = _errors(answer.text)
    assert list(errors) == [full], errors
    assert message in errors[full], errors[full]
    html = answer.text
    assert html.index(f'name="{field}"') < html.index(f'data-path="{full}"')  # under its field
    if after is not None:
        assert html.index(f'data-path="{full}"') < html.index(f'name="{after}"')
    assert _slot(setup, slot) == before  # nothing saved


def test_segments_name_audiences(setup: Setup) -> None:
    client, token, url = _draft(setup)
    form = {"kind": "thompson", "segments_shown": "1", "segments": ["mobile", "martians"]}
    answer = _post(client, url + "/slots/headline", setup, token, **form)
    assert answer.status_code == 422
    assert _errors(answer.text) == {
        "slots.headline.policy.segments[1]": "no such audience (got 'martians')"
    }
    assert 'value="martians" checked' not in answer.text  # only audiences are offered
    assert 'name="segments" value="mobile" checked' in answer.text


def test_dropping_a_feature_a_variant_scores_is_shown_at_the_features(setup: Setup) -> None:
    client, token, url = _draft(setup)
    features = "\n".join(f for f in _slot(setup, "hero")["policy"]["features"] if f != "stage:cart")
    answer = _post(client, url + "/slots/hero", setup, token, features=features)
    assert answer.status_code == 422
    path = "slots.hero.variants[5].scores.stage:cart"
    assert _errors(answer.text) == {
        path: "variants[5].scores.stage:cart: not one of the policy's features (got 0.15)"
    }
    assert answer.text.index('name="features"') < answer.text.index(path)


def test_a_new_slot_with_its_selector_and_first_variant(setup: Setup) -> None:
    client, token, url = _draft(setup)
    assert 'href="' + url + '/new-slot"' in client.get(url).text
    page = client.get(url + "/new-slot")
    assert page.status_code == 200 and 'name="variant_id"' in page.text
    form = {
        "name": "banner",
        "granularity": "element",
        "placement": "inline",
        "selector": "#banner",
        "paths": "/\n/shop",
        "kind": "fixed",
        "seed": "banner-1",
        "variant_id": "banner-spring",
        "content": "<p>Spring sale</p>",
        "status": "active",
    }
    done = _post(client, url + "/new-slot", setup, token, **form)
    assert done.status_code == 303 and done.headers["location"] == url + "/slots/banner"
    assert _slot(setup, "banner") == {
        "granularity": "element",
        "selector": "#banner",
        "paths": ["/", "/shop"],
        "default": "banner-spring",
        "policy": {"kind": "fixed", "seed": "banner-1"},
        "variants": [{"id": "banner-spring", "content": "<p>Spring sale</p>", "status": "active"}],
    }
    assert "New slot banner." in client.get(url).text  # the change in words
    again = _post(client, url + "/new-slot", setup, token, **form)
    assert again.status_code == 422
    assert _errors(again.text) == {
        "slots.banner": "there is a slot with this name already (got 'banner')"
    }
    linear = {**form, "name": "strip", "kind": "linear", "features": "bias visits"}
    assert _post(client, url + "/new-slot", setup, token, **linear).status_code == 303
    assert _slot(setup, "strip")["policy"] == {"kind": "linear", "features": ["bias", "visits"]}
    # a new slot, then its policy on its page: thompson
    thompson = {"kind": "thompson", "floor": "0.05", "segments_shown": "1"}
    assert _post(client, url + "/slots/banner", setup, token, **thompson).status_code == 303
    assert _slot(setup, "banner")["policy"] == {"kind": "thompson", "floor": 0.05}


NEW_REFUSED = [
    ({"name": "my slot!"}, {"slots.my slot!": "a slot name may use only letters"}),
    ({"name": ""}, {"slots.": "give the slot a name"}),
    ({"granularity": "page"}, {"slots.banner.paths": "a page slot must say",
                               "slots.banner.variants[0].path": "a page variant's origin path"}),
    ({"granularity": "huge"}, {"slots.banner.granularity": "must be one of: page, component"}),
    ({"placement": "later"}, {"slots.banner.placement": "must be one of: inline, async"}),
    ({"selector": "a ~ b"}, {"slots.banner.selector": "HTMLRewriter supports"}),
    ({"paths": "shop"}, {"slots.banner.paths[0]": "a path prefix must start with '/'"}),
    ({"kind": "greedy"}, {"slots.banner.policy.kind": "must be one of: fixed, thompson, linear"}),
    ({"kind": "linear"}, {"slots.banner.policy.features": "required"}),
    ({"kind": "linear", "features": "bias daypart:noon"},
     {"slots.banner.policy.features[1]": "daypart must be one of"}),
    ({"variant_id": "a b"}, {"slots.banner.variants[0].id": "a variant id may use only"}),
    ({"status": "paused"}, {"slots.banner.variants": "no variant is active"}),
]  # fmt: skip


@pytest.mark.parametrize(("change", "expected"), NEW_REFUSED)
def test_a_new_slot_the_compiler_refuses_shows_each_problem_at_its_field(
    setup: Setup, change: dict[str, str], expected: dict[str, str]
) -> None:
    client, token, url = _draft(setup)
    form = {"name": "banner", "variant_id": "b1", "content": "x", "page_path": "x", **change}
    answer = _post(client, url + "/new-slot", setup, token, **form)
    assert answer.status_code == 422
    errors = _errors(answer.text)
    assert errors.keys() == expected.keys(), errors
    for path, message in expected.items():
        assert errors[path].startswith(message), errors[path]
    assert set(setup.ws.drafts.all()[0].config["slots"]) == set(setup.ws.head()[1]["slots"])


@pytest.mark.parametrize("name", ["", "banner", "promo"])
def test_a_bad_name_does_not_hide_the_forms_other_problems(setup: Setup, name: str) -> None:
    """A missing or taken name and a selector HTMLRewriter refuses: both, each at its field."""
    client, token, url = _draft(setup)
    if name == "banner":
        form = {"name": "banner", "variant_id": "b1", "content": "x"}
        assert _post(client, url + "/new-slot", setup, token, **form).status_code == 303
    before = setup.ws.drafts.all()[0].config["slots"]
    form = {"name": name, "variant_id": "b1", "content": "x", "selector": "a ~ b"}
    answer = _post(client, url + "/new-slot", setup, token, **form)
    assert answer.status_code == 422
    errors = _errors(answer.text)
    name_error = "give the slot a name" if not name else "there is a slot with this name already"
    assert errors.keys() == {f"slots.{name}", f"slots.{name}.selector"}, errors
    assert errors[f"slots.{name}"].startswith(name_error)
    assert errors[f"slots.{name}.selector"].startswith("HTMLRewriter supports")
    assert answer.text.index('name="name"') < answer.text.index(f'data-path="slots.{name}"')
    assert answer.text.index('name="selector"') < answer.text.index(
        f'data-path="slots.{name}.selector"'
    )
    assert setup.ws.drafts.all()[0].config["slots"] == before


def test_new_slots_need_an_editor_and_an_editable_draft(setup: Setup) -> None:
    _, _, url = _draft(setup)
    viewer = setup.client("vic")
    assert viewer.get(url + "/new-slot").status_code == 403
    form = {"csrf": csrf(viewer.get("/").text), "rev": rev(setup), "name": "x"}
    assert viewer.post(url + "/new-slot", data=form).status_code == 403


def test_slots_are_removed_but_never_the_last(setup: Setup) -> None:
    client, token, url = _draft(setup)
    slots = list(setup.ws.drafts.all()[0].config["slots"])
    gone = _post(client, url + "/slots/promo/delete", setup, token)
    assert gone.status_code == 303 and gone.headers["location"] == url
    assert "promo" not in setup.ws.drafts.all()[0].config["slots"]
    assert "Slot promo is gone" in client.get(url).text
    for name in slots[:-1]:
        if name != "promo":
            assert _post(client, url + f"/slots/{name}/delete", setup, token).status_code == 303
    last = slots[-1] if slots[-1] != "promo" else slots[-2]
    refused = _post(client, url + f"/slots/{last}/delete", setup, token)
    assert refused.status_code == 422 and "a site needs at least one slot" in refused.text
    assert list(setup.ws.drafts.all()[0].config["slots"]) == [last]


def test_set_slot_keeps_only_what_the_kind_reads() -> None:
    config = {"slots": {"s": {"policy": {"kind": "linear", "features": ["bias"], "gamma": 9}}}}
    fixed = editing.set_slot(config, "s", {"kind": "fixed", "seed": "x"})
    assert fixed["slots"]["s"]["policy"] == {"kind": "fixed", "seed": "x"}
    kept = editing.set_slot(config, "s", {"temperature": "0.5"})
    assert kept["slots"]["s"]["policy"] == {
        "kind": "linear",
        "features": ["bias"],
        "gamma": 9,
        "temperature": 0.5,
    }
    assert config["slots"]["s"]["policy"]["gamma"] == 9  # the draft's own is never changed
    assert editing.words(" bias,visits\n\naffinity:running ") == [
        "bias",
        "visits",
        "affinity:running",
    ]


def test_a_draft_of_slot_changes_publishes(setup: Setup) -> None:
    """A new slot, a removed one and a thompson slot made linear compile with the live model
    (pruned: the learned segments of headline go) and reach the edge's snapshot."""
    client, token, url = _draft(setup)
    linear = {
        "kind": "linear",
        "features": "bias device:mobile",
        "exploration": "igw",
        "gamma": "20",
        "cold_start": "true",
    }
    assert _post(client, url + "/slots/headline", setup, token, **linear).status_code == 303
    assert _post(client, url + "/slots/promo/delete", setup, token).status_code == 303
    form = {"name": "banner", "variant_id": "b1", "content": "<b>Hi</b>", "granularity": "element"}
    assert _post(client, url + "/new-slot", setup, token, **form).status_code == 303
    changes = client.get(url).text
    assert "New slot banner." in changes and "Slot promo is gone" in changes
    draft = setup.ws.drafts.all()[0]
    setup.ws.step(draft, ALICE, "submit", "slots")
    setup.ws.step(setup.ws.drafts.get(draft.id), BOB, "approve", "fine")
    done = setup.ws.publish(setup.ws.drafts.get(draft.id), BOB, "ship")
    assert setup.live() == done.header.id
    site = decode_snapshot(setup.ws.registry.current_blob() or b"").site
    slots = {s.name: s for s in site.slots}
    assert "promo" not in slots and slots["banner"].default == "b1"
    policy = slots["headline"].policy
    assert isinstance(policy, LinearPolicy) and policy.features == ("bias", "device:mobile")
    assert policy.exploration.value == "igw" and policy.gamma == 20
