"""Draft pages: the overview and its review steps, slots, variants, rules and audiences.

Each edit goes through ``origin.workspace.editing`` and the compiler; with problems, the form
comes back (422) with each problem next to its field and nothing is saved.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from compile.problems import ConfigError, Problem
from origin.publish import PublishError
from origin.targets import TargetError
from origin.workspace import conditions, editing
from origin.workspace.accounts import User
from origin.workspace.drafts import Draft, WorkflowError
from origin.workspace.web import action, ctx, page, redirect, refuse, render, text

VARIANT_FORM = (*editing.VARIANT_FIELDS, *editing.NUMBER_FIELDS)
SLOT_FORM = ("default", "paths", "policy.kind", "policy.seed", "policy.floor", "policy")
RULE_FORM = ("audience", "action", "variant", "variants")


def _draft(request: Request) -> Draft:
    return ctx(request).workspace.drafts.get(request.path_params["draft"])


def _slot(draft: Draft, request: Request) -> tuple[str, dict[str, Any]]:
    name = request.path_params["slot"]
    table = draft.config.get("slots", {}).get(name)
    if not isinstance(table, dict):
        raise WorkflowError(f"no slot {name!r} in draft {draft.id}")
    return name, table


async def overview(request: Request, user: User) -> Response:
    draft = _draft(request)
    ws = ctx(request).workspace
    try:
        changes, compile_error = ws.changes(draft), ""
    except (ConfigError, ValueError) as exc:
        changes, compile_error = [], str(exc)
    audit = [e for e in ws.registry.audit_log() if e.get("draft") == draft.id]
    return render(
        request,
        "draft.html",
        user,
        draft=draft,
        changes=changes,
        compile_error=compile_error,
        audit=list(reversed(audit)),
        head=ws.versions.head(),
    )


async def step(request: Request, user: User, form: FormData) -> Response:
    draft = _draft(request)
    ws = ctx(request).workspace
    name, why = text(form, "step"), text(form, "why").strip()
    try:
        if name == "publish":
            done = ws.publish(draft, user, why)
            flash = f"Published snapshot {done.header.id}."
        else:
            when = 0
            if name == "schedule":
                when = _when(text(form, "publish_at"))
            ws.step(draft, user, name, why, when)
            flash = f"Draft {name}: done."
    except (WorkflowError, ConfigError, PublishError, TargetError) as exc:
        return refuse(request, user, 409, str(exc))
    return redirect(f"/drafts/{draft.id}", flash, request)


def _when(value: str) -> int:
    """A ``datetime-local`` value (read as UTC) as unix seconds."""
    try:
        found = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    except ValueError:
        raise WorkflowError(f"publish_at: not a date and time ({value!r})") from None
    return int(found.timestamp())


def _save(request: Request, user: User, draft: Draft, config: dict[str, Any], what: str) -> None:
    ctx(request).workspace.drafts.edit(draft, user, config, what)
    ctx(request).workspace.audit("draft-edit", user, what, draft=draft.id)


async def slot_page(request: Request, user: User) -> Response:
    draft = _draft(request)
    name, table = _slot(draft, request)
    return _slot_form(request, user, draft, name, table, [])


def _slot_form(
    request: Request,
    user: User,
    draft: Draft,
    name: str,
    table: dict[str, Any],
    found: list[Problem],
    form: dict[str, str] | None = None,
    prefix: str = "",
    fields: tuple[str, ...] = SLOT_FORM,
) -> Response:
    errors, rest = editing.field_errors(found, prefix or f"slots.{name}", fields)
    return render(
        request,
        "slot.html",
        user,
        status=422 if found else 200,
        draft=draft,
        name=name,
        slot=table,
        errors=errors,
        rule_errors=errors if prefix else {},
        other=rest,
        form=form or {},
        audiences=sorted(draft.config.get("audiences", {})),
    )


async def slot_save(request: Request, user: User, form: FormData) -> Response:
    draft = _draft(request)
    name, table = _slot(draft, request)
    values = {k: text(form, k) for k in ("default", "paths", "kind", "seed", "floor")}
    config = editing.set_slot(draft.config, name, values)
    found = editing.problems(config)
    if found:
        return _slot_form(request, user, draft, name, table, found, values)
    _save(request, user, draft, config, f"slot {name}: settings")
    return redirect(f"/drafts/{draft.id}/slots/{name}", "Slot saved.", request)


async def rule_add(request: Request, user: User, form: FormData) -> Response:
    draft = _draft(request)
    name, table = _slot(draft, request)
    values = {k: text(form, k) for k in ("audience", "action", "variants")}
    config = editing.add_rule(draft.config, name, values)
    found = editing.problems(config)
    if found:
        prefix = editing.rule_path(draft.config, name)
        return _slot_form(request, user, draft, name, table, found, values, prefix, RULE_FORM)
    _save(request, user, draft, config, f"slot {name}: rule for {values['audience']}")
    return redirect(f"/drafts/{draft.id}/slots/{name}", "Rule added.", request)


async def rule_delete(request: Request, user: User, form: FormData) -> Response:
    draft = _draft(request)
    name, _ = _slot(draft, request)
    config = editing.delete_rule(draft.config, name, int(request.path_params["index"]))
    found = editing.problems(config)
    if found:
        return refuse(request, user, 422, "; ".join(str(p) for p in found))
    _save(request, user, draft, config, f"slot {name}: rule removed")
    return redirect(f"/drafts/{draft.id}/slots/{name}", "Rule removed.", request)


def _index(request: Request) -> int | None:
    raw = request.path_params["index"]
    return None if raw == "new" else int(raw)


async def variant_page(request: Request, user: User) -> Response:
    draft = _draft(request)
    name, table = _slot(draft, request)
    index = _index(request)
    current = table.get("variants", [])[index] if index is not None else {"status": "draft"}
    values = {k: "" if current.get(k) is None else str(current.get(k)) for k in VARIANT_FORM}
    return _variant_form(request, user, draft, name, table, index, values, [])


def _variant_form(
    request: Request,
    user: User,
    draft: Draft,
    name: str,
    table: dict[str, Any],
    index: int | None,
    values: dict[str, str],
    found: list[Problem],
) -> Response:
    prefix = editing.variant_path(draft.config, name, index)
    errors, rest = editing.field_errors(found, prefix, VARIANT_FORM)
    return render(
        request,
        "variant.html",
        user,
        status=422 if found else 200,
        draft=draft,
        name=name,
        slot=table,
        index="new" if index is None else index,
        form=values,
        errors=errors,
        other=rest,
    )


async def variant_save(request: Request, user: User, form: FormData) -> Response:
    draft = _draft(request)
    name, table = _slot(draft, request)
    index = _index(request)
    values = {k: text(form, k) for k in VARIANT_FORM}
    config = editing.set_variant(draft.config, name, index, values)
    found = editing.problems(config)
    if found:
        return _variant_form(request, user, draft, name, table, index, values, found)
    verb = "added" if index is None else "edited"
    _save(request, user, draft, config, f"slot {name}: variant {values['id'].strip()} {verb}")
    return redirect(f"/drafts/{draft.id}/slots/{name}", f"Variant {verb}.", request)


async def variant_delete(request: Request, user: User, form: FormData) -> Response:
    draft = _draft(request)
    name, table = _slot(draft, request)
    index = int(request.path_params["index"])
    vid = table["variants"][index].get("id", "")
    config = editing.delete_variant(draft.config, name, index)
    found = editing.problems(config)
    if found:
        return refuse(request, user, 422, "; ".join(str(p) for p in found))
    _save(request, user, draft, config, f"slot {name}: variant {vid} removed")
    return redirect(f"/drafts/{draft.id}/slots/{name}", "Variant removed.", request)


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
    draft = _draft(request)
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
    draft = _draft(request)
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
    _save(request, user, draft, config, f"audience {name}")
    return redirect(f"/drafts/{draft.id}", f"Audience {name} saved.", request)


async def audience_json(request: Request, user: User, form: FormData) -> Response:
    """The GrowthBook JSON the builder's rows write (htmx: updated as the rows change)."""
    condition, bad = _condition(form)
    shown = bad or json.dumps(condition, indent=2)
    return HTMLResponse(f"<pre id='condition-json'>{_escape(shown)}</pre>")


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def holdout_save(request: Request, user: User, form: FormData) -> Response:
    draft = _draft(request)
    config = editing.set_holdout(draft.config, text(form, "holdout"))
    found = editing.problems(config)
    if found:
        return refuse(request, user, 422, "; ".join(str(p) for p in found))
    _save(request, user, draft, config, f"holdout {text(form, 'holdout')}")
    return redirect(f"/drafts/{draft.id}", "Holdout saved.", request)


D = "/drafts/{draft}"
routes = [
    Route(D, page()(overview)),
    Route(D + "/step", action("editor")(step), methods=["POST"]),
    Route(D + "/holdout", action("editor")(holdout_save), methods=["POST"]),
    Route(D + "/slots/{slot}", page()(slot_page)),
    Route(D + "/slots/{slot}", action("editor")(slot_save), methods=["POST"]),
    Route(D + "/slots/{slot}/rules", action("editor")(rule_add), methods=["POST"]),
    Route(
        D + "/slots/{slot}/rules/{index:int}/delete",
        action("editor")(rule_delete),
        methods=["POST"],
    ),
    Route(D + "/slots/{slot}/variants/{index}", page()(variant_page)),
    Route(D + "/slots/{slot}/variants/{index}", action("editor")(variant_save), methods=["POST"]),
    Route(
        D + "/slots/{slot}/variants/{index:int}/delete",
        action("editor")(variant_delete),
        methods=["POST"],
    ),
    Route(D + "/audience-json", action("viewer")(audience_json), methods=["POST"]),
    Route(D + "/audiences/{name}", page()(audience_page)),
    Route(D + "/audiences/{name}", action("editor")(audience_save), methods=["POST"]),
]
