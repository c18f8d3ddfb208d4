"""The worker's settings, read from its environment (wrangler vars and secrets), once per isolate.

| variable | default | meaning |
| --- | --- | --- |
| ORIGIN_URL | (the snapshot's ``site.origin``) | where pages come from |
| COLLECTOR_URL | "" (no shipping) | the origin collector's ``/v1/events`` |
| EVENTS_SECRET | "" | HMAC key signing event batches |
| COOKIE_KEYS | required for cookies | ``kid:secret[,kid:secret...]``; the first signs |
| PREVIEW_KEY | "" (previews off) | HMAC key of preview tokens |
| IDENTITY_KEY | "" (identify off) | HMAC key of the site's identity tokens (``core.identity``) |
| HEALTH_KEY | "" (no details) | ``/_edgepick/health`` details for ``x-edgepick-health-key`` |
| SNAPSHOT_TTL_SECONDS | 10 | how often the isolate re-reads ``snap/current`` |
| ORIGIN_TIMEOUT_SECONDS | 10 | how long the origin may take to send its response headers (504) |
| CONSENT_COOKIE / CONSENT_MODE | ep_consent / opt-out | see ``edge.context.has_consent`` |
| COOKIE_SECURE | true | ``Secure`` attribute on the visitor cookie (false for plain-http dev) |

``/_edgepick/health`` answers everyone ``ok``, the snapshot id and its age; its details (errors,
event counts, config problems) only to a request carrying ``x-edgepick-health-key: HEALTH_KEY``.

Bindings: ``SNAPSHOTS`` (Workers KV, required); ``EVENTS`` (a Queues producer, optional: event
batches go to the queue instead of straight to ``COLLECTOR_URL``, and the queue's consumer,
``edge.queue_consumer``, delivers them; see docs/edge.md, "Event delivery").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.cookie import Keyring, valid_key_id
from edge.context import ConsentPolicy


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    origin_url: str
    collector_url: str
    events_secret: bytes
    keyring: Keyring | None
    preview_key: bytes
    identity_key: bytes
    snapshot_ttl_ms: int
    consent: ConsentPolicy
    secure_cookie: bool
    problems: tuple[str, ...] = ()
    health_key: bytes = b""
    origin_timeout_ms: int = 10_000


def parse_keyring(text: str, problems: list[str] | None = None) -> Keyring | None:
    """``kid:secret,kid:secret``: the first signs, all verify. A part that is not ``kid:secret``
    with a valid key id (``core.cookie.valid_key_id``) is skipped and reported in ``problems``."""
    keys: dict[str, bytes] = {}
    first = ""
    for n, part in enumerate(text.split(",")):
        kid, sep, secret = part.strip().partition(":")
        if sep and secret and valid_key_id(kid):
            keys.setdefault(kid, secret.encode())
            first = first or kid
        elif part.strip() and problems is not None:  # never the text itself: it holds secrets
            named = f" (id {kid[:20]!r})" if sep else ""
            problems.append(
                f"COOKIE_KEYS part {n + 1} is not kid:secret with a key id of ASCII letters,"
                f" digits, '-' or '_'{named}: skipped"
            )
    return Keyring(first, keys) if keys else None


def load(get: Callable[[str], str]) -> EdgeConfig:
    """Settings from a variable lookup (``""`` for unset); bad values fall back and are reported."""
    problems: list[str] = []
    keyring = parse_keyring(get("COOKIE_KEYS"), problems)
    if keyring is None:
        problems.append("COOKIE_KEYS is not set: visitors get no stored features")
    try:
        ttl = max(int(float(get("SNAPSHOT_TTL_SECONDS") or "10") * 1000), 0)
    except (ValueError, OverflowError):
        problems.append("SNAPSHOT_TTL_SECONDS is not a number: using 10")
        ttl = 10_000
    try:
        timeout = int(float(get("ORIGIN_TIMEOUT_SECONDS") or "10") * 1000)
        if not 100 <= timeout <= 120_000:
            raise ValueError
    except (ValueError, OverflowError):
        problems.append("ORIGIN_TIMEOUT_SECONDS is not a number of seconds in 0.1-120: using 10")
        timeout = 10_000
    mode = get("CONSENT_MODE") or "opt-out"
    if mode not in ("opt-out", "opt-in"):
        problems.append(f"CONSENT_MODE {mode!r} is not opt-out or opt-in: using opt-in")
        mode = "opt-in"
    return EdgeConfig(
        origin_url=get("ORIGIN_URL").rstrip("/"),
        collector_url=get("COLLECTOR_URL"),
        events_secret=get("EVENTS_SECRET").encode(),
        keyring=keyring,
        preview_key=get("PREVIEW_KEY").encode(),
        identity_key=get("IDENTITY_KEY").encode(),
        snapshot_ttl_ms=ttl,
        consent=ConsentPolicy(get("CONSENT_COOKIE") or "ep_consent", mode),
        secure_cookie=(get("COOKIE_SECURE") or "true").lower() != "false",
        problems=tuple(problems),
        health_key=get("HEALTH_KEY").encode(),
        origin_timeout_ms=timeout,
    )
