"""Sign-in, the home page, previews and share links, results, history and rollback, audit."""

from __future__ import annotations

import math
import time
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compile.problems import ConfigError
from core.snapshot import decode_snapshot
from origin.publish import PublishError
from origin.registry import RegistryError
from origin.store import SqliteStore
from origin.targets import TargetError
from origin.workspace import previews
from origin.workspace.accounts import User
from origin.workspace.drafts import WorkflowError
from origin.workspace.web import (
    action,
    csrf_ok,
    csrf_token,
    ctx,
    page,
    redirect,
    refuse,
    render,
    text,
    user_of,
)

SHARE_HOURS = (1, 24, 72)


async def login_page(request: Request) -> Response:
    return render(request, "login.html", user_of(request), next=request.query_params.get("next"))


def _local(target: str) -> str:
    """Only a path on this site is a place to go after signing in."""
    parts = urlsplit(target)
    ok = target.startswith("/") and not target.startswith("//") and not parts.netloc
    return target if ok else "/"


async def login(request: Request) -> Response:
    form = await request.form()
    if not csrf_ok(request, form):
        return refuse(request, None, 403, "Invalid or missing CSRF token: reload the page.")
    name, password = text(form, "name"), text(form, "password")
    keys = [f"name:{name}", f"address:{request.client.host if request.client else ''}"]
    now = time.time()  # wall clock: the throttle's file is shared by processes
    wait = ctx(request).throttle.wait(keys, now)
    if wait > 0:
        message = f"Too many failed sign-ins: try again in {math.ceil(wait / 60)} minute(s)."
        return render(request, "login.html", None, 429, error=message)
    user = ctx(request).workspace.accounts.verify(name, password)
    if user is None:
        ctx(request).throttle.fail(keys, now)
        ctx(request).workspace.audit("login-failed", name[:64], "wrong name or password")
        return render(request, "login.html", None, 401, error="Wrong name or password.")
    request.session.clear()
    request.session["user"] = user.name
    request.session["generation"] = ctx(request).workspace.accounts.generation(user.name) or ""
    csrf_token(request)
    ctx(request).workspace.audit("login", user, "")
    return redirect(_local(text(form, "next") or "/"))


async def logout(request: Request, user: User, form: FormData) -> Response:
    """Sign out: every session of this account ends (a copied cookie, another browser)."""
    ctx(request).workspace.accounts.end_sessions(user.name)
    ctx(request).workspace.audit("logout", user, "")
    request.session.clear()
    return redirect("/login")


async def home(request: Request, user: User) -> Response:
    ws = ctx(request).workspace
    live = await run_in_threadpool(ws.live)  # reads the targets' pointers (wrangler: a process)
    return render(
        request,
        "home.html",
        user,
        head=ws.versions.head(),
        state=live,
        live=live.serving,
        warnings=live.warnings(),
        # open drafts first, then the published and discarded ones; newest first within each
        drafts=sorted(ws.drafts.all(), key=lambda d: d.status in ("published", "discarded")),
        holds=ws.registry.overrides.holds(),
    )


async def new_draft(request: Request, user: User, form: FormData) -> Response:
    draft = ctx(request).workspace.start(user, text(form, "title"))
    return redirect(f"/drafts/{draft.id}", "Draft started from the live config.", request)


def _live_site(request: Request) -> Any:
    blob = ctx(request).workspace.registry.current_blob()
    return decode_snapshot(blob).site if blob else None


async def preview_page(request: Request, user: User) -> Response:
    c = ctx(request)
    known = previews.load_personas(c.personas)
    names = request.query_params.getlist("persona")
    visitor = request.query_params.get("visitor", "")
    draft_id = request.query_params.get("draft", "")
    raw_hours = request.query_params.get("hours", "24")
    hours = int(raw_hours) if raw_hours.isdigit() else 24
    values: dict[str, Any] = {
        "known": known,
        "names": names,
        "visitor": visitor,
        "drafts": [
            d for d in c.workspace.drafts.all() if d.status in ("draft", "review", "approved")
        ],
        "draft_id": draft_id,
        "hours": hours if hours in SHARE_HOURS else 24,
        "share_hours": SHARE_HOURS,
        "panes": [],
        "problems": [],
        "share": "",
    }
    if names or visitor:
        try:
            chosen = previews.selected(names, known, visitor)
            draft_site = (
                c.workspace.compile(c.workspace.drafts.get(draft_id).config) if draft_id else None
            )
        except (ConfigError, WorkflowError) as exc:
            values["problems"] = getattr(exc, "problems", None) or [str(exc)]
        else:
            expires = int(time.time()) + values["hours"] * 3600
            values["panes"] = previews.panes(
                chosen, c.edge_url, c.preview_key, expires, _live_site(request), draft_site
            )
            token = previews.ShareLinks(c.secret).make(chosen, expires)
            values["share"] = f"{request.base_url}share/{token}"
            values["expires"] = expires
            if c.preview_key and values["panes"]:  # the first frame, as the browser will ask
                values["edge_warning"] = await previews.check_edge(
                    values["panes"][0].url, c.edge_url
                )
    values["key_warning"] = "" if c.preview_key else previews.NO_KEY
    return render(request, "preview.html", user, **values)


async def share(request: Request) -> Response:
    c = ctx(request)
    found = previews.ShareLinks(c.secret).read(request.path_params["token"], int(time.time()))
    if found is None:
        return refuse(request, None, 410, "This preview link is invalid or has expired.")
    chosen, expires = found
    panes = previews.panes(chosen, c.edge_url, c.preview_key, expires, _live_site(request), None)
    return render(request, "share.html", None, panes=panes, expires=expires)


async def results_page(request: Request, user: User) -> Response:
    c = ctx(request)
    if c.store is None or not c.store.exists():
        return render(request, "results.html", user, found=None, store=c.store)
    try:  # origin.report draws its plots with matplotlib: imported only for this page
        from origin.workspace.results import results
    except ImportError as exc:
        message = (
            f"The results page needs the report's packages: pip install 'edgepick[eval]' ({exc})"
        )
        return refuse(request, user, 501, message)
    store = SqliteStore(c.store)
    try:
        found = results(store, c.workspace.registry)
    finally:
        store.close()
    return render(request, "results.html", user, found=found, store=c.store)


async def history(request: Request, user: User) -> Response:
    ws = ctx(request).workspace
    return render(
        request,
        "history.html",
        user,
        versions=ws.versions.log(),
        snapshots=ws.registry.headers()[:50],
        live=ws.registry.current(),
    )


async def do_rollback(request: Request, user: User, form: FormData) -> Response:
    try:
        done = await run_in_threadpool(
            ctx(request).workspace.rollback, text(form, "snapshot"), user, text(form, "why")
        )
    except (WorkflowError, RegistryError, PublishError, TargetError) as exc:
        return refuse(request, user, 409, str(exc))
    return redirect("/history", f"Rolled back to {done.header.id}.", request)


async def audit(request: Request, user: User) -> Response:
    entries = list(ctx(request).workspace.registry.audit_log())
    return render(request, "audit.html", user, entries=list(reversed(entries))[:500])


routes = [
    Route("/login", login_page),
    Route("/login", login, methods=["POST"]),
    Route("/logout", action()(logout), methods=["POST"]),
    Route("/", page()(home)),
    Route("/drafts", action("editor")(new_draft), methods=["POST"]),
    Route("/preview", page()(preview_page)),
    Route("/share/{token}", share),
    Route("/results", page()(results_page)),
    Route("/history", page()(history)),
    Route("/rollback", action("approver")(do_rollback), methods=["POST"]),
    Route("/audit", page()(audit)),
]
