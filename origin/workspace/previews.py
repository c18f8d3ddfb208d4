"""Previews: personas as the edge sees them (signed preview tokens), and shareable links.

An iframe shows the real page through the edge: ``EDGE/PATH?edgepick_preview=TOKEN`` with a
``core.preview`` token that carries the persona's features and forces the variants the live
snapshot gives that persona (``core.decide``, as ``edgepick explain`` computes them); the edge
logs nothing for it and sets no cookie. Next to it, what the draft would decide for the same
persona (the draft compiled), since the edge serves only what is published.

A share link is ``/share/<signed payload>``: the personas (or described visitor) and an expiry,
signed with the workspace's secret (``itsdangerous``); it shows the iframes only, no workspace
data, until it expires.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeSerializer

from compile.personas import persona
from compile.problems import ConfigError, Problem
from compile.site import load_toml
from core import preview
from core.decide import decide
from core.engine import Engine
from core.model import Site
from core.snapshot import decode_snapshot, encode_snapshot

PREVIEW_PARAM = "edgepick_preview"  # edge.visitor.PREVIEW_PARAM (origin may not import edge)
MAX_PANES = 4


@dataclass(frozen=True, slots=True)
class Pane:
    name: str
    description: str
    url: str
    decisions: tuple[tuple[str, str, str], ...]  # (slot, live variant, draft variant)


def load_personas(path: Path) -> dict[str, dict[str, Any]]:
    table = load_toml(path)
    return {k: v for k, v in table.items() if isinstance(v, dict)}


def described(text: str) -> dict[str, Any]:
    """A visitor described as JSON (the persona keys); raises ConfigError naming the problem."""
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError([Problem("visitor", f"not valid JSON: {exc}", text)]) from None
    if not isinstance(spec, dict):
        raise ConfigError([Problem("visitor", "expected a JSON object", text)])
    persona(spec, int(time.time()), "visitor")  # the same checks as `edgepick explain`
    return spec


def _decisions(site: Site | None, spec: Mapping[str, Any], name: str, now: int) -> dict[str, str]:
    """What ``site`` decides for the persona, as ``edgepick explain --persona`` does (the
    visitor id is the persona's own, so the draw is the same on every render)."""
    if site is None:
        return {}
    engine = Engine.from_snapshot(decode_snapshot(encode_snapshot(site)))
    state, context = persona(spec, now, name)
    return {d.slot: d.variant for d in decide(engine, state, context, now)}


def panes(
    chosen: Mapping[str, Mapping[str, Any]],
    edge_url: str,
    key: bytes,
    expires: int,
    live: Site | None,
    draft: Site | None,
) -> list[Pane]:
    """One pane per persona: the iframe URL and the live and draft decisions side by side.

    The token carries the persona's features and forces the live decisions computed here, so
    the frame shows exactly the table's live column on every load (the edge draws a fresh
    visitor id for each preview request, which would give a new draw each time)."""
    now = int(time.time())
    out = []
    for name, spec in list(chosen.items())[:MAX_PANES]:
        token_spec = {k: v for k, v in spec.items() if k != "description"}
        was = _decisions(live, token_spec, name, now)
        will = _decisions(draft, token_spec, name, now)
        token = preview.encode(preview.Preview(expires, token_spec, was), key)
        context = spec.get("context")
        path = str(context.get("path", "/")) if isinstance(context, dict) else "/"
        url = f"{edge_url.rstrip('/')}{quote(path)}?{PREVIEW_PARAM}={token}"
        slots = sorted(was.keys() | will.keys())
        rows = tuple((s, was.get(s, "-"), will.get(s, "-")) for s in slots)
        out.append(Pane(name, str(spec.get("description", "")), url, rows))
    return out


PREVIEW_HEADER = "x-edgepick-preview"  # the worker's answer to a preview: "1" or "invalid"
NO_KEY = (
    "The workspace has no preview key (PREVIEW_KEY, or --preview-key): the worker refuses every "
    "preview token, so the frames show the page as an anonymous visitor, not the table under "
    "them. Start the workspace with the worker's PREVIEW_KEY (make dev keeps it in .dev.vars)."
)


async def check_edge(url: str, edge_url: str, timeout: float = 4.0) -> str:
    """Ask the worker for one preview page, as a frame will: "" when it took the token (its
    answer says ``x-edgepick-preview: 1``), else a warning saying what is wrong."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            answer = await client.get(url)
    except httpx.HTTPError as exc:
        return (
            f"Could not reach the worker at {edge_url} ({type(exc).__name__}: {exc}): the frames "
            "will stay empty. Start it (make dev) or give the workspace --edge-url."
        )
    said = answer.headers.get(PREVIEW_HEADER)
    if said == "1":
        return ""
    if said == "invalid":
        return (
            f"The worker at {edge_url} refused the preview token ({PREVIEW_HEADER}: invalid): "
            "its PREVIEW_KEY is not the workspace's, so the frames show the page as an "
            "anonymous visitor, not the table under them. Give the workspace the worker's "
            "PREVIEW_KEY (make dev keeps it in .dev.vars)."
        )
    return (
        f"{edge_url} answered the preview (HTTP {answer.status_code}) without {PREVIEW_HEADER}: "
        "is it the edgepick worker? The frames may not show the table under them."
    )


class ShareLinks:
    """Signed, expiring descriptions of a preview (which personas, until when)."""

    def __init__(self, secret: str) -> None:
        self.serializer = URLSafeSerializer(secret, salt="edgepick-workspace-share")

    def make(self, chosen: Mapping[str, Mapping[str, Any]], expires: int) -> str:
        return self.serializer.dumps({"personas": dict(chosen), "exp": expires})

    def read(self, token: str, now: int) -> tuple[dict[str, Any], int] | None:
        """(personas, expiry) or None when the link is forged, malformed or expired."""
        try:
            body = self.serializer.loads(token)
        except BadSignature:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("exp"), int):
            return None
        if body["exp"] < now or not isinstance(body.get("personas"), dict):
            return None
        return body["personas"], body["exp"]


def selected(
    names: Sequence[str], known: Mapping[str, dict[str, Any]], visitor: str
) -> dict[str, dict[str, Any]]:
    """The chosen personas (1 to 4 in all, a described visitor counting as one)."""
    chosen = {n: dict(known[n]) for n in names if n in known}
    if visitor.strip():
        spec = described(visitor)
        spec.setdefault("description", "described visitor")
        chosen["visitor"] = spec
    if not 1 <= len(chosen) <= MAX_PANES:
        raise ConfigError(
            [
                Problem(
                    "personas",
                    f"pick 1 to {MAX_PANES} personas (or describe a visitor)",
                    len(chosen),
                )
            ]
        )
    return chosen
