"""Helpers shared by the edge tests: a stand-in collector on 127.0.0.1 (records every batch it
is sent; the origin's own collector is tested in tests/origin), a served page's decision marks,
and the visitor state inside a Set-Cookie value."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cli.devstack import free_port
from core import cookie, events
from core.cookie import Keyring
from core.features import VisitorState


class Collector:
    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.batches: list[tuple[bytes, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                owner.batches.append((body, self.headers.get(events.SIGNATURE_HEADER, "")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        """Every event received; each batch's signature must verify."""
        found: list[dict[str, Any]] = []
        for body, signature in self.batches:
            assert events.verify(body, signature, self.secret), "bad batch signature"
            found.extend(json.loads(body)["events"])
        return found

    def stop(self) -> None:
        self.server.shutdown()


def decision_marks(html: str) -> set[str]:
    """The decision ids the edge marked the page's slots with."""
    return {part.split('"')[1] for part in html.split("data-edgepick-decision=")[1:]}


def cookie_state(value: str, keyring: Keyring) -> VisitorState:
    """The visitor state a cookie value holds (it must verify)."""
    decoded = cookie.decode(value, keyring, VisitorState("fresh"))
    assert decoded.status.valid, decoded.status
    return decoded.state
