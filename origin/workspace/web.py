"""What every workspace page and form shares: the signed-in user, CSRF, roles, rendering.

Sessions are Starlette's signed cookie (``itsdangerous``; SameSite=strict, HttpOnly). Every
POST, form or htmx, must carry the session's CSRF token (form field ``csrf`` or header
``X-CSRF-Token``), compared in constant time; a request without a signed-in user gets the login
page, one whose role is too weak a 403 page saying which role it needs.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from origin.workspace.accounts import Throttle, User
from origin.workspace.service import Workspace

TEMPLATES = Path(__file__).with_name("templates")
Page = Callable[[Request, User], Awaitable[Response]]
Action = Callable[[Request, User, FormData], Awaitable[Response]]


@dataclass
class Context:
    """The app's settings, reachable from every handler as ``request.app.state.ws``."""

    workspace: Workspace
    templates: Jinja2Templates
    edge_url: str
    preview_key: bytes
    personas: Path
    store: Path | None
    secret: str
    throttle: Throttle  # failed sign-ins, shared by the processes on the same home


def ctx(request: Request) -> Context:
    found: Context = request.app.state.ws
    return found


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def user_of(request: Request) -> User | None:
    """The signed-in user: the session's name, while its generation is still the account's
    (a sign-out, a password reset, a new role or removing the account ends every session)."""
    name = request.session.get("user")
    if not isinstance(name, str):
        return None
    return ctx(request).workspace.accounts.signed_in(name, request.session.get("generation"))


def render(
    request: Request, template: str, user: User | None, status: int = 200, **values: Any
) -> Response:
    flash = request.session.pop("flash", "")
    values = {"user": user, "csrf": csrf_token(request), "flash": flash, **values}
    return ctx(request).templates.TemplateResponse(request, template, values, status_code=status)


def refuse(request: Request, user: User | None, status: int, message: str) -> Response:
    return render(request, "error.html", user, status=status, message=message)


def redirect(url: str, flash: str = "", request: Request | None = None) -> Response:
    if flash and request is not None:
        request.session["flash"] = flash
    return RedirectResponse(url, status_code=303)


def page(role: str = "viewer") -> Callable[[Page], Callable[[Request], Awaitable[Response]]]:
    """A GET handler for signed-in users holding ``role``."""

    def wrap(handler: Page) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            user = user_of(request)
            if user is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            if not user.can(role):
                return refuse(request, user, 403, f"This page needs the {role} role.")
            return await handler(request, user)

        return run

    return wrap


def action(role: str = "viewer") -> Callable[[Action], Callable[[Request], Awaitable[Response]]]:
    """A POST handler for signed-in users holding ``role``, with a valid CSRF token."""

    def wrap(handler: Action) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            form = await request.form()
            if not csrf_ok(request, form):
                return refuse(request, user_of(request), 403, "Invalid or missing CSRF token.")
            user = user_of(request)
            if user is None:
                return RedirectResponse("/login", status_code=303)
            if not user.can(role):
                return refuse(request, user, 403, f"This action needs the {role} role.")
            return await handler(request, user, form)

        return run

    return wrap


def csrf_ok(request: Request, form: Mapping[str, Any]) -> bool:
    expected = request.session.get("csrf")
    given = form.get("csrf") or request.headers.get("x-csrf-token", "")
    return (
        isinstance(expected, str)
        and isinstance(given, str)
        and bool(given)
        and hmac.compare_digest(expected.encode(), given.encode())
    )


def text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""
