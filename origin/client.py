"""``EventsClient``: a site's backend reporting server-side events to the origin's collector.

>>> client = EventsClient("http://127.0.0.1:8790", secret=b"...")          # doctest: +SKIP
>>> client.purchase("order-1042", 59.90, "EUR", user="u-42")               # doctest: +SKIP
>>> client.flush()                                                         # doctest: +SKIP
{'accepted': 1, 'duplicates': 0}

Events are queued and sent in signed batches (``core.events.encode_batch``, HMAC-SHA256 of the
body in ``x-edgepick-signature``) of at most ``MAX_BATCH_EVENTS``. Each event is checked with
``core.events.problem`` when it is added, so a mistake raises ``ValueError`` in the caller's
code, naming the field, instead of costing a whole batch at the collector. A batch that gets no
answer or a 5xx is retried (the ids make resending idempotent); a refusal (4xx) raises
``Refused`` with the collector's message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx

from core.events import (
    LOGIN,
    MAX_BATCH_EVENTS,
    PURCHASE,
    REFUND,
    SIGNATURE_HEADER,
    SUBSCRIBE,
    encode_batch,
    problem,
    sign,
)


class Refused(Exception):
    """The collector refused a batch for good (4xx): ``status`` and its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class EventsClient:
    """Queue server-side events and send them to ``{url}/v1/events`` (see the module docstring).

    ``clock`` gives milliseconds since 1970 for events added without a ``ts``.
    """

    def __init__(
        self,
        url: str,
        secret: bytes,
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        clock: Callable[[], int] = lambda: int(time.time() * 1000),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/v1/events"
        self.secret = secret
        self.attempts = max(1, attempts)
        self.clock = clock
        self.pending: list[dict[str, Any]] = []
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def add(self, kind: str, event_id: str, **fields: Any) -> dict[str, Any]:
        """Queue one event of ``kind``; raises ``ValueError`` naming what is wrong with it."""
        event = {"type": kind, "id": event_id, "ts": fields.pop("ts", None) or self.clock()}
        event.update({k: v for k, v in fields.items() if v is not None and v != ""})
        why = problem(event)
        if why is not None:
            raise ValueError(f"{kind} {event_id!r}: {why}")
        self.pending.append(event)
        if len(self.pending) >= MAX_BATCH_EVENTS:
            self.flush()
        return event

    def purchase(
        self,
        order: str,
        value: float,
        currency: str,
        *,
        user: str = "",
        visitor: str = "",
        **kw: Any,
    ) -> dict[str, Any]:
        return self.add(
            PURCHASE, order, value=value, currency=currency, user=user, visitor=visitor, **kw
        )

    def refund(
        self,
        refund_id: str,
        order: str,
        value: float,
        currency: str,
        *,
        user: str = "",
        visitor: str = "",
        **kw: Any,
    ) -> dict[str, Any]:
        return self.add(
            REFUND,
            refund_id,
            order=order,
            value=value,
            currency=currency,
            user=user,
            visitor=visitor,
            **kw,
        )

    def login(self, login_id: str, *, user: str, visitor: str = "", **kw: Any) -> dict[str, Any]:
        return self.add(LOGIN, login_id, user=user, visitor=visitor, **kw)

    def subscribe(
        self,
        subscription: str,
        *,
        user: str = "",
        visitor: str = "",
        plan: str = "",
        value: float | None = None,
        currency: str = "",
        **kw: Any,
    ) -> dict[str, Any]:
        return self.add(
            SUBSCRIBE,
            subscription,
            user=user,
            visitor=visitor,
            plan=plan,
            value=value,
            currency=currency,
            **kw,
        )

    def flush(self) -> dict[str, int]:
        """Send what is queued; returns the collector's counts (summed over batches)."""
        total = {"accepted": 0, "duplicates": 0}
        while self.pending:
            batch = self.pending[:MAX_BATCH_EVENTS]
            answer = self._send(encode_batch(batch))
            del self.pending[: len(batch)]
            for key in total:
                total[key] += int(answer.get(key, 0))
        return total

    def _send(self, body: bytes) -> dict[str, Any]:
        headers = {SIGNATURE_HEADER: sign(body, self.secret), "content-type": "application/json"}
        error = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(0.5 * 2 ** (attempt - 1))
            try:
                response = self._http.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                error = f"no answer ({exc.__class__.__name__})"
                continue
            if response.status_code < 300:
                found: dict[str, Any] = response.json()
                return found
            if response.status_code < 500:
                raise Refused(response.status_code, response.json().get("error", response.text))
            error = f"{response.status_code}"
        raise ConnectionError(f"edgepick collector {self.url}: {error} after {self.attempts} tries")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EventsClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.flush()
        self.close()
