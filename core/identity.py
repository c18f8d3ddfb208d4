"""Identity tokens: the site's backend vouches for a login, so a visitor cannot claim a user.

Token: ``<user>.<expires>.<mac>``: the user id base64url-encoded, the expiry in unix seconds,
and the first 16 bytes of ``HMAC-SHA256(key, "<user>.<expires>")`` base64url-encoded. The site
mints it at login with the key it shares with the edge (``IDENTITY_KEY``) and hands it to the
page (``edgepick.identify(token)``); the edge links the visitor to that user only if it verifies.
"""

from __future__ import annotations

import binascii

from core.signing import b64decode, b64encode, tag, valid

MAX_TOKEN = 512
MAX_USER_ID = 128  # characters: the one limit the edge and the collector share (core.events)


def sign(user: str, expires: int, key: bytes) -> str:
    signed = f"{b64encode(user.encode())}.{expires}"
    return f"{signed}.{tag(key, signed)}"


def verify(token: str, key: bytes, now: int) -> str | None:
    """The user id a valid, unexpired token names; ``None`` otherwise (never raises)."""
    if not key or not isinstance(token, str) or len(token) > MAX_TOKEN or not token.isascii():
        return None
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    user_b64, expires, mac = parts
    if not valid(key, f"{user_b64}.{expires}", mac):
        return None
    if int(expires) < now:
        return None
    try:
        user = b64decode(user_b64).decode()
    except (binascii.Error, ValueError):
        return None
    return user if 0 < len(user) <= MAX_USER_ID else None
