"""Server-side events through the real collector (``edgepick serve``) over real HTTP: a backend's
purchases, logins, subscriptions and refunds, keyed by user or visitor, credited to the
decisions that visitor or user was shown within the window, each once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from origin.client import EventsClient, Refused
from origin.server_events import SERVER_SECRETS_ENV
from origin.store import SqliteStore
from origin.training import Windows
from tests.origin.helpers import NOW_MS, SECRET, exposure, free_port, identify, signed, start_server

SERVER_KEY = b"backend-key"
HOUR = 3_600_000


@pytest.fixture
def collector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    monkeypatch.setenv(SERVER_SECRETS_ENV, f"{SERVER_KEY.decode()},old-backend-key")
    port, store = free_port(), tmp_path / "events.db"
    proc = start_server(port, store, tmp_path / "registry")
    try:
        yield f"http://127.0.0.1:{port}", store
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _edge_batch(url: str) -> None:
    """What the edge logged: v-1 (later user u-1) saw d1, d2; v-2 saw d3; v-3 saw d4 long ago."""
    batch = [
        exposure(1, visitor="v-1"),
        exposure(2, "hero", "hero-a", visitor="v-1", user="u-1"),
        exposure(3, visitor="v-2"),
        exposure(4, visitor="v-3", ts=NOW_MS - 72 * HOUR),
        identify("v-1", "u-1"),
    ]
    body, headers = signed(batch)
    assert httpx.post(f"{url}/v1/events", content=body, headers=headers).status_code == 200


def _credits(store_path: Path) -> dict[str, tuple[int, float]]:
    store = SqliteStore(store_path)
    try:
        w = Windows()
        return {
            j.exposure["id"]: (j.conversions, j.value)
            for j in store.joined(w.click_ms, w.conversion_ms)
        }
    finally:
        store.close()


def test_purchases_are_credited_once_by_user_and_by_visitor(collector: tuple[str, Path]) -> None:
    url, path = collector
    _edge_batch(url)
    with EventsClient(url, SERVER_KEY) as client:
        # keyed by both: d1 and d2 are v-1's and u-1's, credited once each
        client.purchase("order-1", 50.0, "EUR", user="u-1", visitor="v-1", ts=NOW_MS + HOUR)
        client.purchase("order-2", 20.0, "EUR", visitor="v-2", ts=NOW_MS + HOUR)
        client.subscribe("sub-9", user="u-1", plan="runners-club", ts=NOW_MS + 2 * HOUR)
    assert _credits(path) == {
        "d1-0": (2, 50.0),  # the purchase and the subscription (value 0)
        "d2-0": (2, 50.0),
        "d3-0": (1, 20.0),
        "d4-0": (0, 0.0),  # v-3 bought nothing
    }
    again = EventsClient(url, SERVER_KEY)  # the backend resends after a timeout: duplicates
    again.purchase("order-1", 50.0, "EUR", user="u-1", visitor="v-1", ts=NOW_MS + HOUR)
    assert again.flush() == {"accepted": 0, "duplicates": 1}
    assert _credits(path)["d1-0"] == (2, 50.0)


def test_refunds_login_and_window(collector: tuple[str, Path]) -> None:
    url, path = collector
    _edge_batch(url)
    with EventsClient(url, SERVER_KEY) as client:
        client.purchase("order-1", 50.0, "EUR", user="u-1", ts=NOW_MS + HOUR)
        client.refund("refund-1", "order-1", 20.0, "EUR", user="u-1", ts=NOW_MS + 2 * HOUR)
        client.purchase("order-2", 20.0, "EUR", visitor="v-2", ts=NOW_MS + HOUR)
        client.refund("refund-2", "order-2", 20.0, "EUR", visitor="v-2", ts=NOW_MS + 2 * HOUR)
        # a login links v-3 to u-3; u-3's purchase then credits v-3's exposure, but d4 was
        # shown 73 h before it: outside the 24 h conversion window
        client.login("login-1", user="u-3", visitor="v-3", ts=NOW_MS)
        client.purchase("order-3", 10.0, "EUR", user="u-3", ts=NOW_MS + HOUR)
    credit = _credits(path)
    assert credit["d1-0"] == (1, 30.0) and credit["d2-0"] == (1, 30.0)  # net of the refund
    assert credit["d3-0"] == (0, 0.0)  # refunded in full: no conversion
    assert credit["d4-0"] == (0, 0.0)
    store = SqliteStore(path)
    try:
        assert store.user_of("v-3") == "u-3"  # the backend's login linked them
        assert store.count("purchase") == 3 and store.count("refund") == 2
        assert store.count("login") == 1
    finally:
        store.close()
    # inside the window, u-3's purchase credits v-3's exposure through the login
    late = exposure(5, visitor="v-3", ts=NOW_MS + 30 * 60_000)
    body, headers = signed([late])
    assert httpx.post(f"{url}/v1/events", content=body, headers=headers).status_code == 200
    assert _credits(path)["d5-0"] == (1, 10.0)


def test_a_server_key_sends_server_events_only(collector: tuple[str, Path]) -> None:
    url, _ = collector
    body, headers = signed([exposure(1)], SERVER_KEY)
    answer = httpx.post(f"{url}/v1/events", content=body, headers=headers)
    assert answer.status_code == 403 and "server key" in answer.json()["error"]
    old = EventsClient(url, b"old-backend-key")  # a key still accepted during a rotation
    old.purchase("order-7", 5.0, "USD", user="u-7", ts=NOW_MS)
    assert old.flush() == {"accepted": 1, "duplicates": 0}
    with pytest.raises(Refused) as refused:
        stranger = EventsClient(url, b"not-a-key")
        stranger.purchase("order-8", 5.0, "USD", user="u-7", ts=NOW_MS)
        stranger.flush()
    assert refused.value.status == 401
    # the edge's own secret may send server-side events too (one key for a small site)
    edge = EventsClient(url, SECRET)
    edge.login("login-9", user="u-9", ts=NOW_MS)
    assert edge.flush() == {"accepted": 1, "duplicates": 0}


def test_bad_events_are_named(collector: tuple[str, Path]) -> None:
    url, _ = collector
    client = EventsClient(url, SERVER_KEY)
    with pytest.raises(ValueError, match="currency"):
        client.purchase("order-1", 5.0, "euro", user="u-1")
    with pytest.raises(ValueError, match="user: a user id or a visitor id"):
        client.purchase("order-1", 5.0, "EUR")
    with pytest.raises(ValueError, match="value"):
        client.purchase("order-1", float("nan"), "EUR", user="u-1")
    with pytest.raises(ValueError, match="order"):
        client.refund("refund-1", "", 5.0, "EUR", user="u-1")
    bad = {"type": "purchase", "id": "o-1", "ts": NOW_MS, "user": "u-1", "value": -1}
    body, headers = signed([bad], SERVER_KEY)
    answer = httpx.post(f"{url}/v1/events", content=body, headers=headers)
    assert answer.status_code == 400 and answer.json()["field"] == "value"
