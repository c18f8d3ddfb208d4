"""The origin service: ``POST /v1/events`` (the collector), ``POST /v1/decide``, ``GET /health``.

Event batches are ``core.events.encode_batch`` JSON signed ``hex(HMAC-SHA256(secret, body))`` in
the ``x-edgepick-signature`` header. A batch is checked in this order, each failure refusing it
with a JSON ``{"error": ...}``:

1. size: over ``MAX_BATCH_BYTES`` -> 413 (read no further);
2. signature -> 401 (a batch signed only with a server key, ``origin.server_events``, may carry
   server-side events only -> 403);
3. JSON shape -> 400; more than ``MAX_BATCH_EVENTS`` events -> 413;
4. every event by ``core.events.problem`` -> 400 naming the first bad event's index and field.
   One bad event refuses the **whole** batch (nothing is stored), so the sender can fix and
   resend it without losing or half-applying anything.

An accepted batch is committed to the store before the ``200 {"accepted": n, "duplicates": m}``
reply, so every acknowledged event is durable. A store that cannot take the batch now (the
JetStream sink while NATS is unreachable, ``origin.lake.stream``) refuses it with a ``503``
JSON error within a couple of seconds; the edge sends it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.events import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    SIGNATURE_HEADER,
    loads,
    problem,
    verify,
)
from origin.server_events import scope_problem, server_secrets_from_env
from origin.store import EventStore


class Refused(Exception):
    """A request the service refuses: HTTP status and a message naming what is wrong."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.message, **self.details}, status_code=self.status)


@dataclass
class Service:
    """What the routes share: the store, the secret, and (for decide) a decision provider.

    ``previous``: secrets still accepted while a rotation rolls out (the edge may sign with the
    old one until its new deployment is everywhere); drop them once it is.
    """

    store: EventStore
    secret: bytes
    decider: Any = None  # origin.channels.Decider, when /v1/decide is enabled
    counters: dict[str, int] = field(default_factory=dict)
    previous: tuple[bytes, ...] = ()
    clock: Callable[[], float] = time.time
    # backends' keys: server-side events only (origin.server_events)
    server_secrets: tuple[bytes, ...] = field(default_factory=server_secrets_from_env)

    @property
    def secrets(self) -> tuple[bytes, ...]:
        return (self.secret, *self.previous)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


async def read_signed(
    request: Request, secrets: tuple[bytes, ...], limit: int = MAX_BATCH_BYTES
) -> bytes:
    """The request body, within ``limit`` bytes and signed with one of ``secrets``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"body is {declared} bytes, over the {limit}-byte limit")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise Refused(413, f"body is over the {limit}-byte limit")
    except ClientDisconnect:  # gone before the body was in (a slow client cut off): nothing
        raise Refused(400, "the client went away before its body arrived") from None
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        raise Refused(401, f"missing {SIGNATURE_HEADER} header (HMAC-SHA256 of the body)")
    if not any(verify(bytes(body), signature, secret) for secret in secrets):
        raise Refused(401, f"{SIGNATURE_HEADER} does not match the body (wrong secret?)")
    return bytes(body)


MAX_FUTURE_MS = 86_400_000  # an event stamped more than a day ahead of the origin's clock


def parse_batch(body: bytes, now_ms: int | None = None) -> list[dict[str, Any]]:
    """The events of a batch body; raises ``Refused`` naming the first problem (with
    ``now_ms``, also an event stamped more than ``MAX_FUTURE_MS`` in the future)."""
    try:
        payload = loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"body: not valid JSON ({exc})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise Refused(400, 'body: expected {"events": [...]}')
    events: list[Any] = payload["events"]
    if len(events) > MAX_BATCH_EVENTS:
        raise Refused(413, f"events: {len(events)} in one batch, over the {MAX_BATCH_EVENTS} limit")
    for index, event in enumerate(events):
        why = problem(event)
        if why is None and now_ms is not None and event["ts"] > now_ms + MAX_FUTURE_MS:
            why = f"ts: {event['ts']} is over a day ahead of the origin's clock"
        if why is not None:
            field_name = why.split(":", 1)[0] if ":" in why else ""
            raise Refused(
                400,
                f"events[{index}].{why}; the whole batch was refused, nothing was stored",
                index=index,
                field=field_name,
                event_id=event.get("id") if isinstance(event, dict) else None,
            )
    return events


async def events_endpoint(request: Request) -> JSONResponse:
    service: Service = request.app.state.service
    try:
        body = await read_signed(request, service.secrets + service.server_secrets)
        events = parse_batch(body, int(service.clock() * 1000))
        signature = request.headers.get(SIGNATURE_HEADER, "")
        scope = scope_problem(body, signature, service.secrets, events)
        if scope is not None:
            raise Refused(403, scope)
        # a store that cannot take the batch now (JetStream unreachable) refuses it with a 503
        result = await run_in_threadpool(service.store.append, events)
    except Refused as refused:
        service.count(f"refused_{refused.status}")
        return refused.response()
    service.count("accepted", result.accepted)
    service.count("duplicates", result.duplicates)
    return JSONResponse({"accepted": result.accepted, "duplicates": result.duplicates})


async def decide_endpoint(request: Request) -> JSONResponse:
    service: Service = request.app.state.service
    if service.decider is None:
        return JSONResponse({"error": "decide API not enabled (no registry)"}, status_code=503)
    try:
        body = await read_signed(request, service.secrets, 64 * 1024)
        try:
            payload = loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Refused(400, f"body: not valid JSON ({exc})") from None
        answer = await run_in_threadpool(service.decider.decide, payload)
    except Refused as refused:
        return refused.response()
    return JSONResponse(answer)


async def health_endpoint(request: Request) -> JSONResponse:
    """200 while events are accepted; 503 with the reason while the store refuses them (a
    JetStream collector whose NATS server is unreachable), so a load balancer sends elsewhere."""
    service: Service = request.app.state.service
    check = getattr(service.store, "problem", None)
    problem = check() if callable(check) else None
    if problem:
        body = {"ok": False, "problem": problem, "counters": service.counters}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"ok": True, "counters": service.counters})


def create_app(service: Service) -> Starlette:
    app = Starlette(
        routes=[
            Route("/v1/events", events_endpoint, methods=["POST"]),
            Route("/v1/decide", decide_endpoint, methods=["POST"]),
            Route("/health", health_endpoint, methods=["GET"]),
        ]
    )
    app.state.service = service
    return app
