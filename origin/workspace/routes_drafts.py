"""Draft pages: the overview and its review steps, the holdout, slots, variants and rules.

Each edit goes through ``origin.workspace.editing`` and the compiler; with problems, the form
comes back (422) with each problem next to its field and nothing is saved.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compile.problems import ConfigError, Problem
from core.features import FEATURES, feature_problem
from origin.publish import PublishError
from origin.targets import TargetError
from origin.workspace import editing
from origin.workspace.accounts import User
from origin.workspace.drafts import Draft, Forbidden, WorkflowError, editors
from origin.workspace.web import action, ctx, page, redirect, refuse, render, text

VARIANT_FORM = (*editing.VARIANT_FIELDS, *editing.NUMBER_FIELDS)
SLOT_SETTINGS = ("default", "paths", "selector", "placement")
POLICY_SETTINGS = ("kind", "seed", "floor", "features", "exploration", "temperature", "gamma")
SLOT_FORM = (
    *SLOT_SETTINGS,
    *(f"policy.{k}" for k in (*POLICY_SETTINGS, "cold_start", "segments")),
    "policy",
)
NEW_SLOT_FORM = (
    "granularity",
    "placement",
    "selector",
    "paths",
    "default",
    "policy.kind",
    "policy.seed",
    "policy.features",
    "variants[0].id",
    "variants[0].content",
    "variants[0].path",
    "variants[0].status",
    "variants",
)
NEW_SLOT_FIELDS = (
    "name",
    "granularity",
    "placement",
    "selector",
    "paths",
    "kind",
    "seed",
    "features",
    "variant_id",
    "content",
    "page_path",
    "status",
)
PLACEHOLDER = "edgepick-workspace-new-slot"  # a name no slot has, to check a form whose name is bad
RULE_FORM = ("audience", "action", "variant", "variants")
# the features a linear policy may use, as the slot page lists them ("affinity:…" takes a value)
FEATURE_HINT = sorted(f if feature_problem(f) is None else f"{f}:…" for f in FEATURES)


def draft_of(request: Request, form: FormData | None = None) -> Draft:
    """The draft the path names; for a form, as the form's page showed it (``Conflict``)."""
    drafts, did = ctx(request).workspace.drafts, request.path_params["draft"]
    return drafts.get(did) if form is None else drafts.current(did, text(form, "rev"))


def _slot(draft: Draft, request: Request) -> tuple[str, dict[str, Any]]:
    name = request.path_params["slot"]
    table = draft.config.get("slots", {}).get(name)
    if not isinstance(table, dict):
        raise WorkflowError(f"no slot {name!r} in draft {draft.id}")
    return name, table


async def overview(request: Request, user: User) -> Response:
    return await _overview(request, user, draft_of(request), [])


async def _overview(request: Request, user: User, draft: Draft, holdout: list[Problem]) -> Response:
    ws = ctx(request).workspace
    against, contents, warnings = "", [], []
    try:
        review = await run_in_threadpool(ws.review, draft)  # reads the targets' pointers
        changes, compile_error = ws.changes(draft, review), ""
        against, contents = review.against, review.contents()
    except (ConfigError, ValueError) as exc:
        changes, compile_error = [], str(exc)
    if draft.status in ("draft", "review", "approved"):
        warnings = (await run_in_threadpool(ws.live)).warnings()
    audit = [e for e in ws.registry.audit_log() if e.get("draft") == draft.id]
    return render(
        request,
        "draft.html",
        user,
        draft=draft,
        changes=changes,
        against=against,
        contents=contents,
        live_warnings=warnings,
        compile_error=compile_error,
        audit=list(reversed(audit)),
        head=ws.versions.head(),
        editors=editors(draft),
        status=422 if holdout else 200,
        holdout_errors={"holdout": holdout} if holdout else {},
    )


async def step(request: Request, user: User, form: FormData) -> Response:
    draft = draft_of(request, form)
    ws = ctx(request).workspace
    name, why = text(form, "step"), text(form, "why").strip()
    try:
        if name == "publish":
            done = await run_in_threadpool(ws.publish, draft, user, why)  # targets take seconds
            flash = f"Published snapshot {done.header.id}."
        else:
            when = 0
            if name == "schedule":
                when = _when(text(form, "publish_at"))
            ws.step(draft, user, name, why, when)
            flash = f"Draft {name}: done."
    except Forbidden as exc:
        return refuse(request, user, 403, str(exc))
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


def save(request: Request, user: User, draft: Draft, config: dict[str, Any], what: str) -> None:
    """Store an edit the compiler accepted, and audit-log it."""
    ctx(request).workspace.drafts.edit(draft, user, config, what)
    ctx(request).workspace.audit("draft-edit", user, what, draft=draft.id)


async def slot_page(request: Request, user: User) -> Response:
    draft = draft_of(request)
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
    segments: list[str] | None = None,
) -> Response:
    errors, rest = editing.field_errors(found, prefix or f"slots.{name}", fields)
    if not prefix:  # a variant's score for a feature the policy no longer has: the features'
        scores = re.compile(rf"^slots\.{re.escape(name)}\.(variants\[\d+\]\.scores.*)$")
        for problem in list(rest):
            hit = scores.match(problem.path)
            if hit:
                rest.remove(problem)
                shown = Problem(problem.path, f"{hit.group(1)}: {problem.message}", problem.value)
                errors.setdefault("policy.features", []).append(shown)
    policy = table.get("policy", {})
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
        segments=policy.get("segments", []) if segments is None else segments,
        features=FEATURE_HINT,
        kinds=editing.POLICY_KINDS,
        explorations=editing.EXPLORATIONS,
        placements=editing.PLACEMENTS,
    )


async def slot_save(request: Request, user: User, form: FormData) -> Response:
    draft = draft_of(request, form)
    name, table = _slot(draft, request)
    keys = (*SLOT_SETTINGS, *POLICY_SETTINGS, "cold_start")
    values = {k: text(form, k) for k in keys if k in form}
    segments = [s for s in form.getlist("segments") if isinstance(s, str)]
    shown = segments if "segments_shown" in form else None
    config = editing.set_slot(draft.config, name, values, shown)
    found = editing.problems(config)
    if found:
        return _slot_form(request, user, draft, name, table, found, values, segments=shown)
    save(request, user, draft, config, f"slot {name}: settings")
    return redirect(f"/drafts/{draft.id}/slots/{name}", "Slot saved.", request)


async def slot_new_page(request: Request, user: User) -> Response:
    return _new_slot_form(request, user, draft_of(request), {"status": "active"}, [])


def _new_slot_form(
    request: Request, user: User, draft: Draft, values: dict[str, str], found: list[Problem]
) -> Response:
    name = values.get("name", "").strip()
    errors, rest = editing.field_errors(found, f"slots.{name}", NEW_SLOT_FORM)
    return render(
        request,
        "slot_new.html",
        user,
        status=422 if found else 200,
        draft=draft,
        form=values,
        errors=errors,
        other=rest,
        kinds=editing.POLICY_KINDS,
        granularities=editing.GRANULARITIES,
        placements=editing.PLACEMENTS,
    )


async def slot_create(request: Request, user: User, form: FormData) -> Response:
    """A new slot with its first variant (its default); the policy is then set on its page."""
    draft = draft_of(request, form)
    values = {k: text(form, k) for k in NEW_SLOT_FIELDS}
    name = values["name"].strip()
    found: list[Problem] = []
    if not name:
        found.append(Problem("slots.", "give the slot a name"))
    elif name in draft.config.get("slots", {}):
        found.append(Problem(f"slots.{name}", "there is a slot with this name already", name))
    config = editing.new_slot(draft.config, name, values)
    if found:  # the rest of the form is checked too, under a name no slot has
        checked = editing.new_slot(draft.config, PLACEHOLDER, values)
        found += editing.renamed(editing.problems(checked), f"slots.{PLACEHOLDER}", f"slots.{name}")
    else:
        found = editing.problems(config)
    if found:
        return _new_slot_form(request, user, draft, values, found)
    save(request, user, draft, config, f"slot {name} added")
    return redirect(f"/drafts/{draft.id}/slots/{name}", f"Slot {name} added.", request)


async def slot_delete(request: Request, user: User, form: FormData) -> Response:
    """Remove a slot (the compiler refuses to remove the last one); its elements keep the
    page's own content once published."""
    draft = draft_of(request, form)
    name, table = _slot(draft, request)
    config = editing.delete_slot(draft.config, name)
    found = editing.problems(config)
    if found:
        return _slot_form(request, user, draft, name, table, found)
    save(request, user, draft, config, f"slot {name} removed")
    return redirect(f"/drafts/{draft.id}", f"Slot {name} removed.", request)


async def rule_add(request: Request, user: User, form: FormData) -> Response:
    draft = draft_of(request, form)
    name, table = _slot(draft, request)
    values = {k: text(form, k) for k in ("audience", "action", "variants")}
    config = editing.add_rule(draft.config, name, values)
    found = editing.problems(config)
    if found:
        prefix = editing.rule_path(draft.config, name)
        return _slot_form(request, user, draft, name, table, found, values, prefix, RULE_FORM)
    save(request, user, draft, config, f"slot {name}: rule for {values['audience']}")
    return redirect(f"/drafts/{draft.id}/slots/{name}", "Rule added.", request)


async def rule_delete(request: Request, user: User, form: FormData) -> Response:
    draft = draft_of(request, form)
    name, _ = _slot(draft, request)
    config = editing.delete_rule(draft.config, name, int(request.path_params["index"]))
    found = editing.problems(config)
    if found:
        return refuse(request, user, 422, "; ".join(str(p) for p in found))
    save(request, user, draft, config, f"slot {name}: rule removed")
    return redirect(f"/drafts/{draft.id}/slots/{name}", "Rule removed.", request)


def _index(request: Request) -> int | None:
    raw = request.path_params["index"]
    if raw == "new":
        return None
    if not raw.isdigit():
        raise WorkflowError(f"no variant {raw!r}")
    return int(raw)


async def variant_page(request: Request, user: User) -> Response:
    draft = draft_of(request)
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
    draft = draft_of(request, form)
    name, table = _slot(draft, request)
    index = _index(request)
    values = {k: text(form, k) for k in VARIANT_FORM}
    config = editing.set_variant(draft.config, name, index, values)
    found = editing.problems(config)
    if found:
        return _variant_form(request, user, draft, name, table, index, values, found)
    verb = "added" if index is None else "edited"
    save(request, user, draft, config, f"slot {name}: variant {values['id'].strip()} {verb}")
    return redirect(f"/drafts/{draft.id}/slots/{name}", f"Variant {verb}.", request)


async def variant_delete(request: Request, user: User, form: FormData) -> Response:
    draft = draft_of(request, form)
    name, table = _slot(draft, request)
    index = int(request.path_params["index"])
    vid = table["variants"][index].get("id", "")
    config = editing.delete_variant(draft.config, name, index)
    found = editing.problems(config)
    if found:
        return refuse(request, user, 422, "; ".join(str(p) for p in found))
    save(request, user, draft, config, f"slot {name}: variant {vid} removed")
    return redirect(f"/drafts/{draft.id}/slots/{name}", "Variant removed.", request)


async def holdout_save(request: Request, user: User, form: FormData) -> Response:
    draft = draft_of(request, form)
    config = editing.set_holdout(draft.config, text(form, "holdout"))
    found = editing.problems(config)
    if found:
        return await _overview(request, user, draft, found)
    save(request, user, draft, config, f"holdout {text(form, 'holdout')}")
    return redirect(f"/drafts/{draft.id}", "Holdout saved.", request)


D = "/drafts/{draft}"
routes = [
    Route(D, page()(overview)),
    Route(D + "/step", action("editor")(step), methods=["POST"]),
    Route(D + "/holdout", action("editor")(holdout_save), methods=["POST"]),
    Route(D + "/new-slot", page("editor")(slot_new_page)),
    Route(D + "/new-slot", action("editor")(slot_create), methods=["POST"]),
    Route(D + "/slots/{slot}", page()(slot_page)),
    Route(D + "/slots/{slot}/delete", action("editor")(slot_delete), methods=["POST"]),
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
]
