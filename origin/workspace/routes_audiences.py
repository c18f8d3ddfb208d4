"""Audience pages: the condition builder (rows <-> GrowthBook JSON) and the JSON editor."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from compile.problems import Problem
from origin.workspace import conditions, editing
from origin.workspace.accounts import User
from origin.workspace.drafts import Draft
from origin.workspace.routes_drafts import D, draft_of, save
from origin.workspace.web import action, page, redirect, render, text


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
    entry = draft.config.get("audiences", {}).get(name, {}) if name != "new" else {}
    condition = entry.get("condition", {})
    shown = conditions.rows(condition)
    return _audience_form(
        request, user, draft, name, entry.get("description", ""), condition, shown, []
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
    if name == "new":
        name = text(form, "name").strip()
    condition, bad_json = _condition(form)
    description = text(form, "description")
    shown = conditions.rows(condition) if isinstance(condition, dict) else None
    if bad_json:
        found = [Problem(f"audiences.{name}.condition", bad_json)]
        return _audience_form(request, user, draft, name, description, {}, None, found)
    config = editing.set_audience(draft.config, name, condition, description)
    found = editing.problems(config)
    if not name:
        found.insert(0, Problem("audiences.", "give the audience a name"))
    if found:
        return _audience_form(request, user, draft, name, description, condition, shown, found)
    save(request, user, draft, config, f"audience {name}")
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
