"""Issue 17, through a real browser: the marketers' workspace drives the real loop.

``edgepick workspace`` runs as its own process on the session's registry, publishing to the
local KV that ``wrangler dev`` serves. Chromium (tests/e2e/browser.mjs) signs in as an editor,
creates a variant, sees the compiler's error next to the field, gives new visitors a rule that
shows it, sets the holdout to 0, makes the cta's fixed split a linear policy (after the
compiler refuses a feature), reads the change in words, previews two personas side by side
(iframes of the worker with signed preview tokens), submits; a second user, an approver,
approves and publishes; the worker then serves the new variant to a new visitor (a fresh
browser) and the snapshot has the linear cta; the approver rolls back with one click and the
worker stops serving it; every step is in the audit log page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from cli.devstack import ROOT, Process, free_port
from core.model import LinearPolicy, Site
from core.snapshot import decode_snapshot
from origin.registry import Registry
from tests.e2e.conftest import CHROMIUM, DRIVER, BrowserError, BrowserRun, Loop, node

PASSWORD = "e2e workspace password"
CONTENT = "Spring into the trail"  # the new headline
FORCED = {"landing": "home-standard", "headline": "hl-spring"}
HEADLINE = '[data-edgepick-slot="headline"]'
PANES = """[...document.querySelectorAll('.pane')].map(p => ({
  src: p.querySelector('iframe').src,
  rows: [...p.querySelectorAll('.decisions tr')].map(r => [...r.cells].map(c => c.textContent)),
}))"""
FIRST_VALUE = "document.querySelector('[name=value]')"
JSON_SHOWN = "document.querySelector('#condition-json')"
FIRST_WHY = "document.querySelector('form.step input[name=why]')"
SEED_BOX = "document.querySelector('[name=seed]').closest('.kind')"
FEATURES_BOX = "getComputedStyle(document.querySelector('[name=features]').closest('.kind'))"
FEATURE_ERROR = ".error[data-path='slots.cta.policy.features[1]']"


def _flash(text: str) -> str:
    """JS: the page's flash message says ``text`` (the next page has loaded)."""
    return f"document.querySelector('.flash')?.textContent === {json.dumps(text)}"


def _rollback_form(snapshot: str) -> str:
    """JS: the history page's rollback form for ``snapshot``."""
    return f"document.querySelector('form.rollback input[value=\"{snapshot}\"]').form"


@dataclass
class Workspace:
    port: int
    process: Process

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def browse(self, steps: Sequence[Mapping[str, Any]], timeout_ms: int = 60_000) -> BrowserRun:
        """``steps`` in a fresh Chromium profile against the workspace (as ``Loop.browse``)."""
        payload = {
            "base": self.base,
            "steps": list(steps),
            "cookies": [],
            "timeout": timeout_ms,
            "executable": str(CHROMIUM),
        }
        done = subprocess.run(
            [node(), str(DRIVER)],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60 + timeout_ms / 1000 * (len(steps) + 1),
        )
        try:
            out = json.loads(done.stdout)
        except json.JSONDecodeError:
            raise BrowserError(
                f"browser driver: {done.stdout[-2000:]}{done.stderr[-2000:]}"
            ) from None
        if "error" in out:
            raise BrowserError(
                f"step {out['step']} {steps[out['step']]!r}: {out['error']}\n"
                f"{self.process.tail(30)}"
            )
        return BrowserRun(out["results"], out["requests"])


def _cli(*args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def workspace(loop: Loop) -> Iterator[Workspace]:
    home = loop.tmp / "workspace"
    where = ["--registry", str(loop.registry), "--home", str(home)]
    _cli("workspace", "user", "add", "alice", "--role", "editor", *where, stdin=PASSWORD + "\n")
    _cli("workspace", "user", "add", "bob", "--role", "approver", *where, stdin=PASSWORD + "\n")
    original = (loop.registry / "CURRENT").read_text().strip()
    port = free_port()
    process = Process(
        "edgepick workspace",
        [
            sys.executable,
            "-m",
            "cli.main",
            "workspace",
            *where,
            "--port",
            str(port),
            "--config",
            str(ROOT / "fixtures" / "site.toml"),
            "--model",
            str(ROOT / "fixtures" / "model.json"),
            "--target",
            f"wrangler:{loop.kv}",
            "--edge-url",
            loop.base,
            "--store",
            str(loop.db),
        ],
        loop.tmp / "logs" / "workspace.log",
        env={**os.environ, "PREVIEW_KEY": loop.preview_key},  # secrets stay off the command line
    )
    running = Workspace(port, process)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(running.base + "/login", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert process.alive(), process.tail()
                assert time.monotonic() < deadline, process.tail()
                time.sleep(0.2)
        yield running
    finally:
        process.stop()
        # leave the session's stack as found, even after a failure: the snapshot it served, and
        # no pin (a workspace rollback pins, which would stop later scenarios' sync rounds)
        if (loop.registry / "CURRENT").read_text().strip() != original:
            _cli(
                "rollback",
                original,
                "--registry",
                str(loop.registry),
                "--target",
                f"wrangler:{loop.kv}",
            )
        Registry(loop.registry).overrides.resume(pin=True)  # nothing to lift if it failed early


def _login(name: str) -> list[dict[str, Any]]:
    return [
        {"goto": "/"},  # nothing without a login: the login page
        {"eval": "location.pathname"},
        {
            "eval": f"document.querySelector('[name=name]').value = {json.dumps(name)}; "
            f"document.querySelector('[name=password]').value = {json.dumps(PASSWORD)}"
        },
        {"click": "form[action='/login'] button"},
        {"waitFor": "form[action='/logout']"},
    ]


def _fill(values: Mapping[str, str]) -> dict[str, str]:
    js = "; ".join(
        f"document.querySelector('[name={k}]').value = {json.dumps(v)}" for k, v in values.items()
    )
    return {"eval": js}


def _forced(loop: Loop) -> str:
    """The page the worker serves when a preview forces hl-spring (unknown: not forced)."""
    token = loop.preview_token(FORCED)
    status, headers, body = loop.http(f"/?edgepick_preview={token}")
    assert status == 200 and headers.get("x-edgepick-preview") == "1"
    return body.decode()


def _site(loop: Loop, snapshot: str) -> Site:
    return decode_snapshot((loop.registry / "snapshots" / f"{snapshot}.snap").read_bytes()).site


def _visitor_sees(browser: Callable[..., BrowserRun]) -> str:
    """The headline a new visitor (a fresh Chromium profile) gets from the worker."""
    run = browser([{"goto": "/"}, {"text": HEADLINE}])
    assert run.results[0]["status"] == 200
    text: str = run.value(1)
    return text


def test_a_marketer_ships_and_rolls_back_a_variant(
    loop: Loop, workspace: Workspace, browser: Callable[..., BrowserRun]
) -> None:
    live_before = (loop.registry / "CURRENT").read_text().strip()
    assert CONTENT not in _forced(loop) and CONTENT not in _visitor_sees(browser)
    # --- alice, an editor: a draft, a refused variant, then a good one, a rule, the holdout
    run = workspace.browse(
        [
            *_login("alice"),
            _fill({"title": "Spring headline"}),
            {"click": "form[action='/drafts'] button"},
            {"waitFor": "h1 .status.draft"},
            {"eval": "location.pathname"},
        ]
    )
    assert run.value(1) == "/login"
    draft = run.value(8)
    assert draft.startswith("/drafts/d-")
    site = tomllib.loads((ROOT / "fixtures" / "site.toml").read_text())
    index = len(site["slots"]["headline"]["variants"])  # the new variant's place
    weight = f".error[data-path='slots.headline.variants[{index}].weight']"
    variant = {"id": "hl-spring", "content": CONTENT, "status": "active"}
    rule = {"audience": "new_visitor", "action": "force", "variants": "hl-spring"}
    run = workspace.browse(
        [
            *_login("alice"),
            {"goto": f"{draft}/slots/headline/variants/new"},
            _fill({**variant, "weight": "-1"}),
            {"click": "#variant-form button.primary"},
            {"waitFor": weight},
            {"text": weight},
            _fill({"weight": "1"}),
            {"click": "#variant-form button.primary"},
            {"waitFor": ".flash"},
            {"text": ".flash"},
            _fill(rule),  # on the slot page: new visitors always see it
            {"click": "form[action$='/rules'] button"},
            {"waitFunction": _flash("Rule added.")},
            {"goto": draft},
            _fill({"holdout": "0"}),  # the holdout would keep 5% of new visitors on the default
            {"click": "form[action$='/holdout'] button"},
            {"waitFunction": _flash("Holdout saved.")},
            {"text": "ul.changes"},
            # the cta's fixed split becomes a linear policy: a bad feature first, then good ones
            {"goto": f"{draft}/slots/cta"},
            _fill({"kind": "linear", "features": "bias\naffinity"}),
            {"eval": f"getComputedStyle({SEED_BOX}).display + ' ' + {FEATURES_BOX}.display"},
            {"click": "#slot-form button.primary"},
            {"waitFor": FEATURE_ERROR},
            {"text": FEATURE_ERROR},
            _fill({"features": "bias\nnew_visitor"}),
            {"click": "#slot-form button.primary"},
            {"waitFunction": _flash("Slot saved.")},
            {"eval": "document.querySelector('[name=kind]').value"},
        ]
    )
    assert "must be at least 0.0 (got -1)" in run.value(9)
    assert run.value(13) == "Variant added."
    changes = run.value(21)  # the diff in words, before anyone publishes
    assert "headline: new variant hl-spring." in changes
    assert "headline: new rule, visitors in new_visitor always see hl-spring." in changes
    assert "Holdout: 5% -> 0%" in changes
    assert run.value(24) == "none block"  # the form shows the chosen kind's settings only
    assert run.value(27).startswith("feature 'affinity' needs an argument")
    assert run.value(31) == "linear"
    # --- the condition builder, two personas side by side, submit
    run = workspace.browse(
        [
            *_login("alice"),
            # the audience builder writes GrowthBook JSON as the rows change (htmx, CSRF header)
            {"goto": f"{draft}/audiences/mobile"},
            _fill({"value": "tablet"}),
            {"eval": f"{FIRST_VALUE}.dispatchEvent(new Event('input', {{bubbles: true}}))"},
            {"waitFunction": f"{JSON_SHOWN}.textContent.includes('tablet')"},
            {"text": "#condition-json"},
            # two personas side by side, through the edge
            {"goto": f"/preview?persona=loyal_runner&persona=cart_abandoner&draft={draft[8:]}"},
            {"waitFor": ".pane[data-persona=cart_abandoner] iframe"},
            {"waitFunction": "document.querySelectorAll('.pane iframe').length === 2"},
            {"waitRequests": "edgepick_preview=", "count": 2},
            {"eval": PANES},
            {"goto": draft},
            _fill({"why": "ready for review"}),
            {"click": "form.step button"},
            {"waitFor": "h1 .status.review"},
        ]
    )
    assert '"device": {' in run.value(9) and '"tablet"' in run.value(9)
    panes = run.value(14)
    assert len(panes) == 2 and all(p["src"].startswith(loop.base) for p in panes)
    documents = [r for r in run.requests if "edgepick_preview=" in r["url"]]
    assert len(documents) >= 2  # both iframes loaded the real pages from the worker
    content = {
        (s.name, v.id): v.content for s in _site(loop, live_before).slots for v in s.variants
    }
    for pane in panes:  # what the iframes show: the worker's pages, as previews
        status, headers, body = loop.http(pane["src"][len(loop.base) :])
        assert status == 200 and headers.get("x-edgepick-preview") == "1"
        shown = {row[0]: row[1] for row in pane["rows"][1:]}  # slot -> the live variant
        page = body.decode()
        on_page = [s for s in ("headline", "cta") if f'data-edgepick-slot="{s}"' in page]
        assert "headline" in on_page
        for slot in on_page:  # the table says what the frame shows
            assert content[slot, shown[slot]] in page, (slot, shown[slot])
        assert shown["headline"] != "hl-spring"  # live: not yet; the draft column has it
    # --- bob, an approver (not the author): approve, publish
    run = workspace.browse(
        [
            *_login("bob"),
            {"goto": draft},
            _fill({"why": "copy checked"}),
            {"click": "form.step button"},
            {"waitFor": "h1 .status.approved"},
            {"eval": f"{FIRST_WHY}.value = 'spring launch'"},
            {"click": "form.step button.primary"},
            {"waitFor": "h1 .status.published"},
            {"text": ".flash"},
        ]
    )
    published = run.value(12).removeprefix("Published snapshot ").rstrip(".")
    assert (loop.registry / "CURRENT").read_text().strip() == published != live_before
    cta = {s.name: s for s in _site(loop, published).slots}["cta"]
    assert isinstance(cta.policy, LinearPolicy) and cta.policy.features == ("bias", "new_visitor")
    assert CONTENT in _forced(loop)  # wrangler dev serves the new variant ...
    assert _visitor_sees(browser) == CONTENT  # ... to a new visitor, through its rule
    # --- one click back
    back = _rollback_form(live_before)
    run = workspace.browse(
        [
            *_login("bob"),
            {"goto": "/history"},
            {"eval": f"{back}.querySelector('[name=why]').value = 'off season'"},
            {"eval": f"{back}.querySelector('button').click()"},
            {"waitFor": ".flash"},
            {"text": ".flash"},
            {"goto": "/audit"},
            {"text": "table.audit"},
        ]
    )
    assert run.value(9) == f"Rolled back to {live_before}."
    assert (loop.registry / "CURRENT").read_text().strip() == live_before
    assert CONTENT not in _forced(loop) and CONTENT not in _visitor_sees(browser)
    audit = run.value(11)
    for step in (
        "login",
        "draft-create",
        "draft-edit",
        "draft-submit",
        "draft-approve",
        "publish",
        "draft-publish",
        "rollback",
        "workspace-rollback",
    ):
        assert f"\t{step}\t" in audit, step
    for why in ("ready for review", "copy checked", "spring launch", "off season"):
        assert why in audit, why
