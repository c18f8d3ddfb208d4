"""New audiences: a name taken, malformed or reserved is refused under the name field, and
nothing is saved (an existing audience is never silently replaced)."""

from __future__ import annotations

import re
from html import unescape

import pytest

from tests.origin.workspace.conftest import Setup, csrf, rev


def _name_error(html: str) -> str:
    """The error shown right under the name field of the new-audience form."""
    found = re.search(
        r'<input name="name"[^>]*></label>\s*<p class="error" data-path="[^"]*">([^<]*)', html
    )
    assert found, "no error under the name field"
    return unescape(found.group(1))


def _new(setup: Setup, name: str) -> tuple[int, str]:
    client = setup.client("alice")
    token = csrf(client.get("/").text)
    url = client.post("/drafts", data={"csrf": token, "title": "a"}).headers["location"]
    form = {
        "csrf": token,
        "rev": rev(setup),
        "name": name,
        "mode": "json",
        "json": '{"device": "tablet"}',
    }
    answer = client.post(url + "/audiences/new", data=form)
    return answer.status_code, answer.text


def test_a_new_audience_may_not_take_an_existing_name(setup: Setup) -> None:
    before = setup.ws.head()[1]["audiences"]["staff"]
    status, html = _new(setup, "staff")
    assert status == 422
    assert _name_error(html) == "there is an audience with this name already (got 'staff')"
    assert setup.ws.drafts.all()[0].config["audiences"]["staff"] == before
    assert len(setup.ws.drafts.all()[0].history) == 1  # nothing saved
    # the form comes back as the new-audience form, posting to /new, with the name typed
    assert 'action="/drafts/' in html and '/audiences/new"' in html
    assert 'value="staff"' in html


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x/y", "use 1 to 64 letters, digits, - and _ only"),
        ("<b>x</b>", "use 1 to 64 letters, digits, - and _ only"),
        ("two words", "use 1 to 64 letters, digits, - and _ only"),
        ("new", "'new' is reserved by the workspace: choose another name"),
        ("delete", "'delete' is reserved by the workspace: choose another name"),
    ],
)
def test_a_new_audience_name_is_a_plain_word(setup: Setup, name: str, message: str) -> None:
    status, html = _new(setup, name)
    assert status == 422
    assert _name_error(html).startswith(message)
    assert "<b>x</b>" not in html
    assert name not in setup.ws.drafts.all()[0].config["audiences"]


def test_a_blank_name_is_refused_under_the_field(setup: Setup) -> None:
    status, html = _new(setup, " ")
    assert status == 422 and _name_error(html) == "give the audience a name"


def test_a_good_new_name_is_saved_and_its_page_opens(setup: Setup) -> None:
    status, _ = _new(setup, "tablet_users-2")
    assert status == 303
    draft = setup.ws.drafts.all()[0]
    assert draft.config["audiences"]["tablet_users-2"] == {"condition": {"device": "tablet"}}
    client = setup.client("vic")
    assert client.get(f"/drafts/{draft.id}/audiences/tablet_users-2").status_code == 200
    assert client.get(f"/drafts/{draft.id}/audiences/nope").status_code == 404
