"""A preview that cannot work says so: no preview key, a worker that refuses the token
(``x-edgepick-preview: invalid``), a worker that cannot be reached."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from core import preview
from tests.origin.workspace.conftest import PREVIEW_KEY, Setup

PAGE = "/preview?persona=loyal_runner&persona=cart_abandoner"


@pytest.fixture
def edge() -> Iterator[str]:
    """A stand-in worker on 127.0.0.1: it checks the preview token with PREVIEW_KEY, as the
    real one does, and answers ``x-edgepick-preview: 1`` or ``invalid``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            token = parse_qs(urlsplit(self.path).query).get("edgepick_preview", [""])[0]
            found, _ = preview.decode(token, PREVIEW_KEY, int(time.time()))
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("x-edgepick-preview", "1" if found else "invalid")
            self.end_headers()
            self.wfile.write(b"<p>a page</p>")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _warnings(html: str) -> list[str]:
    return [unescape(w) for w in re.findall(r'<p class="hold preview-warning">([^<]*)</p>', html)]


def test_a_worker_that_takes_the_token_gives_no_warning(setup: Setup, edge: str) -> None:
    page = setup.client("vic", edge_url=edge).get(PAGE)
    assert page.status_code == 200 and _warnings(page.text) == []


def test_a_worker_with_another_key_is_named(setup: Setup, edge: str) -> None:
    client = setup.client("vic", edge_url=edge, preview_key=b"not the worker's key")
    warnings = _warnings(client.get(PAGE).text)
    assert len(warnings) == 1
    assert (
        f"The worker at {edge} refused the preview token (x-edgepick-preview: invalid)"
        in (warnings[0])
    )


def test_no_preview_key_is_said_before_anything_is_picked(setup: Setup, edge: str) -> None:
    client = setup.client("vic", edge_url=edge, preview_key=b"")
    assert _warnings(client.get("/preview").text)[0].startswith(
        "The workspace has no preview key (PREVIEW_KEY"
    )
    assert "no preview key" in _warnings(client.get(PAGE).text)[0]


def test_an_unreachable_worker_is_named(setup: Setup) -> None:
    warnings = _warnings(setup.client("vic").get(PAGE).text)  # 127.0.0.1:9: nothing there
    assert len(warnings) == 1
    assert warnings[0].startswith("Could not reach the worker at http://127.0.0.1:9")


def test_the_hint_and_the_check_agree_on_how_many(setup: Setup) -> None:
    client = setup.client("vic")
    assert "Pick 1 to 4" in client.get("/preview").text
    one = client.get("/preview?persona=loyal_runner")
    assert one.status_code == 200 and 'class="error"' not in one.text
    five = "&".join(
        f"persona={n}"
        for n in (
            "first_time_mobile",
            "loyal_runner",
            "eu_hiker_from_newsletter",
            "cart_abandoner",
            "staff_member",
        )
    )
    many = client.get("/preview?" + five + '&visitor={"visits": 2}')
    assert "pick 1 to 4 personas" in unescape(many.text)
