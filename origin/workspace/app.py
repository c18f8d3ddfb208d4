"""The workspace web app: Starlette, Jinja2 templates, htmx; nothing without a login.

``create_app`` wires the pages (``routes_drafts``, ``routes_views``) to a ``Workspace``; a
background task publishes scheduled drafts when they are due (every ``tick`` seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from origin.workspace import routes_audiences, routes_drafts, routes_views
from origin.workspace.accounts import Throttle
from origin.workspace.drafts import Conflict, WorkflowError
from origin.workspace.service import Workspace
from origin.workspace.web import TEMPLATES, Context, refuse, user_of

STATIC = Path(__file__).with_name("static")
HTMX = Path(__file__).resolve().parents[2] / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"
SESSION_HOURS = 8
log = logging.getLogger("edgepick.workspace")


def create_app(
    workspace: Workspace,
    *,
    secret: str,
    edge_url: str = "http://127.0.0.1:8787",
    preview_key: bytes = b"",
    personas: Path,
    store: Path | None = None,
    htmx: Path = HTMX,
    tick: float = 15.0,
    https_only: bool = False,
) -> Starlette:
    """The app; ``secret`` signs sessions and share links (keep it across restarts);
    ``https_only`` marks the session cookie Secure (behind a TLS proxy)."""

    async def htmx_js(request: Request) -> Response:
        if not htmx.exists():
            return Response("// htmx.org is not installed (npm ci)\n", 404)
        return FileResponse(htmx, media_type="text/javascript")

    async def not_found(request: Request, exc: Exception) -> Response:
        return refuse(request, user_of(request), 404, str(exc))

    async def conflict(request: Request, exc: Exception) -> Response:
        return refuse(request, user_of(request), 409, str(exc))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async def scheduler() -> None:
            while True:
                await asyncio.sleep(tick)
                try:
                    done = await asyncio.to_thread(workspace.publish_due, int(time.time()))
                except Exception:  # the scheduler must outlive one bad round
                    log.exception("scheduled publish failed")
                    continue
                for draft in done:
                    log.warning("scheduled publish: draft %s published", draft)

        task = asyncio.create_task(scheduler())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["datetime"] = utc
    templates.env.filters["shown"] = lambda value: f"{value!r:.80}"  # as Problem prints it
    app = Starlette(
        routes=[
            *routes_views.routes,
            *routes_drafts.routes,
            *routes_audiences.routes,
            Route("/static/htmx.min.js", htmx_js),
            Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=secret,
                session_cookie="edgepick_workspace",
                max_age=SESSION_HOURS * 3600,
                same_site="strict",
                https_only=https_only,
            ),
            Middleware(Headers),
        ],
        exception_handlers={
            Conflict: conflict,
            WorkflowError: not_found,
            IndexError: not_found,
            KeyError: not_found,
        },
        lifespan=lifespan,
    )
    throttle = Throttle(workspace.home / "throttle.db")
    app.state.ws = Context(
        workspace, templates, edge_url, preview_key, personas, store, secret, throttle
    )
    return app


class Headers:
    """Headers on every answer: no framing of the workspace (clickjacking), no Referer (share
    links carry their token in the URL), no MIME sniffing, and pages never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["x-frame-options"] = "DENY"
                headers["content-security-policy"] = "frame-ancestors 'none'"
                headers["referrer-policy"] = "no-referrer"
                headers["x-content-type-options"] = "nosniff"
                if not static:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def utc(ts: object) -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM UTC`` (blank for none)."""
    if not isinstance(ts, int | float) or not ts:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
