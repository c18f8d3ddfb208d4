"""Browser signals as session features: what the beacon's signals change in the cookie's flags,
so that audiences (``flags``) and linear policies (``flag:NAME``) act on them within the
session, before the origin has folded them into the visitor's profile (``origin.stitch``).

The same flag names as the profile's, each from this session's signals alone:

- ``cart:CAT``: a product of that category added to the cart (removed: the flag goes); the two
  latest kept;
- ``interest:CAT``: the category of the product viewed last;
- ``searcher``: searched the site;
- ``form:NAME``: submitted that form;
- ``clicked:NAME``: the tracked element clicked last.

Scroll depth stays an origin feature (``engaged`` needs two pages read). Names come from the
page's markup through the beacon's checks (``core.events.signal_problem``: printable, bounded);
a flag is kept only when it is a short printable token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MAX_FLAG = 48  # characters of a flag the edge writes (the cookie has a byte budget)
MAX_CART = 2


def _flag(prefix: str, name: Any) -> str | None:
    if not isinstance(name, str) or not name or not name.isprintable():
        return None
    flag = prefix + name
    return flag if len(flag) <= MAX_FLAG and ";" not in flag and "," not in flag else None


def session_flags(flags: frozenset[str], signals: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """``flags`` updated by these ``signal`` events, in their order."""
    kept = set(flags)
    carts = sorted(f for f in kept if f.startswith("cart:"))
    for event in signals:
        kind, action = event.get("signal"), event.get("action", "")
        if kind == "product":
            flag = _flag(
                "cart:" if action in ("add", "remove") else "interest:", event.get("category")
            )
            if flag is None:
                continue
            if action == "add":
                others = [c for c in carts if c != flag]
                carts = [*others[len(others) - (MAX_CART - 1) :], flag]
            elif action == "remove":
                carts = [c for c in carts if c != flag]
            else:
                kept = {f for f in kept if not f.startswith("interest:")} | {flag}
        elif kind == "search":
            kept.add("searcher")
        elif kind == "form" and action == "submit":
            flag = _flag("form:", event.get("name"))
            if flag is not None:
                kept.add(flag)
        elif kind == "track":
            flag = _flag("clicked:", event.get("name"))
            if flag is not None:
                kept = {f for f in kept if not f.startswith("clicked:")} | {flag}
    kept = {f for f in kept if not f.startswith("cart:")} | set(carts)
    return frozenset(kept)
