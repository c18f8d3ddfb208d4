"""Audience pages: the condition builder (rows <-> GrowthBook JSON) and the JSON editor."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from compile.problems import Problem
from origin.workspace import conditions, editing
from origin.workspace.accounts import User
from origin.workspace.drafts import Draft, WorkflowError
from origin.workspace.routes_drafts import D, draft_of, save
from origin.workspace.web import action, page, redirect, render, text

NEW = "new"  # the route word of the new-audience form: no audience may take it
ROUTE_WORDS = frozenset({NEW, "delete"})
AUDIENCE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PLACEHOLDER = "edgepick-workspace-new-audience"


def name_problems(draft: Draft, name: str) -> list[Problem]:
    """Why a new audience may not take ``name`` (none: it may): it is given, letters, digits,
    ``-`` and ``_`` only (as slot names: its page's URL is made from it), not a word the
    workspace's routes use, and not the name of an audience the draft has."""
    path = f"audiences.{name}"
    if not name:
        return [Problem(path, "give the audience a name")]
    if not AUDIENCE_NAME.match(name):
        return [Problem(path, "use 1 to 64 letters, digits, - and _ only", name)]
    if name.lower() in ROUTE_WORDS:
        return [Problem(path, f"{name!r} is reserved by the workspace: choose another name", name)]
    if name in draft.config.get("audiences", {}):
        return [Problem(path, "there is an audience with this name already", name)]
    return []


def _condition(form: FormData) -> tuple[Any, str]:
    """The condition a builder form describes (rows, or the JSON box when mode is json)."""
    if text(form, "mode") == "json":
        raw = text(form, "json")
        try:
            return json.loads(raw), ""
        except json.JSONDecodeError as exc:
            return None, f"not valid JSON: {exc}"
    match, rows = conditions.from_form(form, form.getlist)
    return conditions.build(match, rows), ""


async def audience_page(request: Request, user: User) -> Response:
    draft = draft_of(request)
    name = request.path_params["name"]
    new = name == NEW
    if not new and name not in draft.config.get("audiences", {}):
        raise WorkflowError(f"no audience {name!r} in draft {draft.id}")
    entry = draft.config.get("audiences", {}).get(name, {}) if not new else {}
    condition = entry.get("condition", {})
    shown = conditions.rows(condition)
    return _audience_form(
        request,
        user,
        draft,
        "" if new else name,
        entry.get("description", ""),
        condition,
        shown,
        [],
        new=new,
    )


def _audience_form(
    request: Request,
    user: User,
    draft: Draft,
    name: str,
    description: str,
    condition: Any,
    shown: tuple[str, list[conditions.Row]] | None,
    found: list[Problem],
    new: bool = False,
) -> Response:
    errors, rest = editing.field_errors(found, f"audiences.{name}", ("condition", "description"))
    match, rows = shown if shown is not None else ("all", [])
    return render(
        request,
        "audience.html",
        user,
        status=422 if found else 200,
        draft=draft,
        name=name,
        new=new,
        description=description,
        mode="rows" if shown is not None else "json",
        match=match,
        rows=[*rows, conditions.Row("", "$eq", ""), conditions.Row("", "$eq", "")],
        condition_json=json.dumps(condition, indent=2),
        attributes=conditions.ATTRIBUTES,
        operators=conditions.OPERATORS,
        errors=errors,
        other=rest,
    )


async def audience_save(request: Request, user: User, form: FormData) -> Response:
    draft = draft_of(request, form)
    name = request.path_params["name"]
    new = name == NEW
    if new:
        name = text(form, "name").strip()
    elif name not in draft.config.get("audiences", {}):
        raise WorkflowError(f"no audience {name!r} in draft {draft.id}")
    condition, bad_json = _condition(form)
    description = text(form, "description")
    shown = conditions.rows(condition) if isinstance(condition, dict) else None
    named = name_problems(draft, name) if new else []
    if bad_json:
        found = [*named, Problem(f"audiences.{name}.condition", bad_json)]
        return _audience_form(request, user, draft, name, description, {}, None, found, new)
    config = editing.set_audience(draft.config, name, condition, description)
    # a bad name is not put in the config (it may replace another audience): the compiler
    # checks the condition under a placeholder name, the name's problem is shown under it
    checked = (
        editing.set_audience(draft.config, PLACEHOLDER, condition, description) if named else config
    )
    found = editing.renamed(
        editing.problems(checked), f"audiences.{PLACEHOLDER}", f"audiences.{name}"
    )
    found = named + found
    if found:
        return _audience_form(request, user, draft, name, description, condition, shown, found, new)
    save(request, user, draft, config, editing.audience_change(draft.config, config, name))
    return redirect(f"/drafts/{draft.id}", f"Audience {name} saved.", request)


async def audience_json(request: Request, user: User, form: FormData) -> Response:
    """The GrowthBook JSON the builder's rows write (htmx: updated as the rows change)."""
    condition, bad = _condition(form)
    shown = bad or json.dumps(condition, indent=2)
    return HTMLResponse(f"<pre id='condition-json'>{_escape(shown)}</pre>")


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def audience_delete(request: Request, user: User, form: FormData) -> Response:
    """Remove an audience; refused, with the rules that still name it, while any does."""
    draft = draft_of(request, form)
    name = request.path_params["name"]
    config = editing.delete_audience(draft.config, name)
    found = editing.problems(config)
    if found:
        entry = draft.config["audiences"][name]
        shown = conditions.rows(entry.get("condition", {}))
        return _audience_form(
            request,
            user,
            draft,
            name,
            entry.get("description", ""),
            entry.get("condition", {}),
            shown,
            found,
        )
    save(request, user, draft, config, f"audience {name} removed")
    return redirect(f"/drafts/{draft.id}", f"Audience {name} removed.", request)


routes = [
    Route(D + "/audience-json", action("viewer")(audience_json), methods=["POST"]),
    Route(D + "/audiences/{name}", page()(audience_page)),
    Route(D + "/audiences/{name}", action("editor")(audience_save), methods=["POST"]),
    Route(D + "/audiences/{name}/delete", action("editor")(audience_delete), methods=["POST"]),
]
