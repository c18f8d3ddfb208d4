"""Server-side events on the collector: which keys may send them, and what such a batch may hold.

A site's backends (order system, login, billing) post ``core.events`` server-side events
(purchase, login, subscribe, refund) to ``POST /v1/events`` in batches signed like the edge's:
``hex(HMAC-SHA256(secret, body))`` in ``x-edgepick-signature``. Two kinds of key verify them:

- the collector's own secret (``EDGEPICK_SECRET``, the edge's ``EVENTS_SECRET``) and its
  previous ones: such a batch may carry any event type;
- **server keys** (``EDGEPICK_SERVER_SECRETS``, comma-separated, the first new ones first while
  rotating): a batch signed only by one of them may carry server-side events and nothing else,
  so a backend's key cannot forge the edge's exposures or clicks (403).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from core.events import SERVER_TYPES, verify

SERVER_SECRETS_ENV = "EDGEPICK_SERVER_SECRETS"


def server_secrets_from_env() -> tuple[bytes, ...]:
    """The server keys named by ``EDGEPICK_SERVER_SECRETS`` (empty entries ignored)."""
    given = os.environ.get(SERVER_SECRETS_ENV, "")
    return tuple(s.encode() for s in given.split(",") if s)


def scope_problem(
    body: bytes,
    signature: str,
    edge_secrets: Sequence[bytes],
    events: Sequence[Mapping[str, Any]],
) -> str | None:
    """Why a verified batch may not carry its events (``None``: it may). A body signed with an
    edge secret may carry anything; one signed with a server key only, server-side events."""
    if any(verify(body, signature, secret) for secret in edge_secrets):
        return None
    for index, event in enumerate(events):
        if event.get("type") not in SERVER_TYPES:
            return (
                f"events[{index}].type: a server key may send only "
                f"{', '.join(SERVER_TYPES)} events; the whole batch was refused"
            )
    return None
