"""A signal the page sends reaches this session's features at once: the beacon re-signs the
cookie with the flags it implies, and the next request decides with them (``flags``)."""

from __future__ import annotations

import json

from core import cookie
from core.engine import Engine
from core.features import RequestContext, attributes
from tests.edge import local
from tests.edge.local import UA_DESKTOP


def test_signals_reach_the_cookie_and_the_next_requests_attributes(fixture_blob: bytes) -> None:
    edge = local.Edge(fixture_blob)
    edge.request("/p/run-trail-shoe")
    body = {
        "events": [
            {"type": "signal", "id": "s1", "signal": "product", "name": "run-trail-4",
             "category": "running", "action": "add", "path": "/p/run-trail-shoe"},
            {"type": "signal", "id": "s2", "signal": "search", "query": "trail shoes", "path": "/"},
            {"type": "signal", "id": "s3", "signal": "track", "name": "size-guide", "path": "/"},
        ]
    }  # fmt: skip
    reply = edge.request(
        "/_edgepick/events", method="POST", body=json.dumps(body).encode(), user_agent=UA_DESKTOP
    )
    assert reply.status == 202 and json.loads(reply.body or b"{}")["accepted"] == 3
    assert any(name == "set-cookie" for name, _ in reply.headers)
    assert edge.config.keyring is not None
    state = cookie.decode(edge.jar["ep"], edge.config.keyring, None).state  # type: ignore[arg-type]
    assert {"cart:running", "searcher", "clicked:size-guide"} <= state.flags
    edge.request("/")  # the next page keeps them, and its conditions read them
    state = cookie.decode(edge.jar["ep"], edge.config.keyring, None).state  # type: ignore[arg-type]
    engine = Engine.from_bytes(fixture_blob)
    seen = attributes(state, RequestContext(), 0, engine.site.signals)["flags"]
    assert {"cart:running", "searcher", "clicked:size-guide"} <= set(seen)


def test_a_beacon_without_signals_leaves_the_cookie_alone(fixture_blob: bytes) -> None:
    edge = local.Edge(fixture_blob)
    edge.request("/")
    body = {"events": [{"type": "click", "decision": "not-mine", "id": "c1"}]}
    reply = edge.request("/_edgepick/events", method="POST", body=json.dumps(body).encode())
    assert not any(name == "set-cookie" for name, _ in reply.headers)
