"""Request context from what a request says about itself: device, referrer, UTM, country, consent.

Lenient by design: every header is optional and anything unrecognized maps to a documented
default (``desktop``, ``other``, empty country), never an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

from core.features import RequestContext

_BOT = re.compile(r"bot|crawl|spider|slurp|headless|lighthouse|preview", re.IGNORECASE)
# HTTP libraries and command-line tools: programs, not people (they render nothing)
_TOOL = re.compile(
    r"^(curl|wget|python-requests|python-urllib|python-httpx|aiohttp|go-http-client|okhttp"
    r"|java/|apache-httpclient|libwww-perl|lwp::|httpie|axios|node-fetch|undici|got |"
    r"postmanruntime|insomnia|ruby|faraday|guzzle|php|powershell|dart:io|reqwest|k6/|wrk|ab/"
    r"|scrapy|httpclient|hackney|winhttp)",
    re.IGNORECASE,
)
_TABLET = re.compile(r"ipad|tablet|kindle|silk|playbook", re.IGNORECASE)
_MOBILE = re.compile(r"mobi|iphone|ipod|android|blackberry|opera mini|iemobile", re.IGNORECASE)

_SEARCH = (
    "google.",
    "bing.com",
    "duckduckgo.com",
    "yahoo.",
    "baidu.com",
    "yandex.",
    "ecosia.org",
    "search.brave.com",
)
_SOCIAL = (
    "facebook.com",
    "fb.com",
    "instagram.com",
    "t.co",
    "twitter.com",
    "x.com",
    "linkedin.com",
    "lnkd.in",
    "pinterest.",
    "reddit.com",
    "tiktok.com",
    "youtube.com",
)
_EMAIL = ("mail.", "outlook.", "gmail.com", "proton.me")


# what a User-Agent or a referring host says, kept for the next requests that send the same:
# browsers' User-Agent strings repeat from visitor to visitor (four case-blind regular
# expressions over one cost about 19 us under Pyodide; a kept answer 0.2 us). Bounded in count
# (least recently used out) and in length (longer ones are worked out each time), so a visitor
# sending a new one per request costs only the work itself, and the memory kept stays small.
KEPT_ANSWERS = 1024  # at most about 0.4 MB each, at full length
KEPT_LENGTH = 256


def device_class(user_agent: str) -> str:
    """``bot`` for crawlers, HTTP libraries and command-line tools, and requests with no
    User-Agent at all (every browser sends one); then tablet, mobile, desktop."""
    if len(user_agent) <= KEPT_LENGTH:
        return _kept_device_class(user_agent)
    return _device_class(user_agent)


def _device_class(user_agent: str) -> str:
    ua = user_agent.strip()
    if not ua or _BOT.search(ua) or _TOOL.match(ua):
        return "bot"
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    return "desktop"


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _matches(host: str, labels: list[str], name: str) -> bool:
    """``google.`` matches a label (``www.google.de``); ``t.co`` the domain or a subdomain."""
    if name.endswith("."):
        return name[:-1] in labels[:-1]
    return host == name or host.endswith("." + name)


def referrer_class(referer: str, own_host: str, utm_medium: str = "") -> str:
    if utm_medium.lower() in ("email", "newsletter"):
        return "email"
    if not referer:
        return "direct"
    host = _host(referer)
    if len(host) + len(own_host) <= KEPT_LENGTH:
        return _kept_host_class(host, own_host)
    return _host_class(host, own_host)


def _host_class(host: str, own_host: str) -> str:
    if not host:
        return "other"
    if host == own_host.lower():
        return "internal"
    labels = host.split(".")
    for names, label in ((_EMAIL, "email"), (_SOCIAL, "social"), (_SEARCH, "search")):
        if any(_matches(host, labels, n) for n in names):
            return label
    return "other"


_kept_device_class = lru_cache(maxsize=KEPT_ANSWERS)(_device_class)
_kept_host_class = lru_cache(maxsize=KEPT_ANSWERS)(_host_class)


@dataclass(frozen=True, slots=True)
class ConsentPolicy:
    cookie: str = "ep_consent"
    mode: str = "opt-out"  # opt-out: consent unless refused or GPC; opt-in: only when granted


def has_consent(
    headers: Mapping[str, str], cookies: Mapping[str, str], policy: ConsentPolicy
) -> bool:
    """Global Privacy Control (``Sec-GPC: 1``) always means no; then the consent cookie decides."""
    if headers.get("sec-gpc", "").strip() == "1":
        return False
    value = cookies.get(policy.cookie, "").lower()
    if value in ("0", "no", "false", "denied"):
        return False
    if value in ("1", "yes", "true", "granted"):
        return True
    return policy.mode != "opt-in"


def parse_cookies(header: str) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in cookies:
            cookies[name] = value.strip().strip('"')
    return cookies


def request_context(
    url: str,
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
    country: str,
    now: int,
    consent: ConsentPolicy,
) -> RequestContext:
    """Everything a decision may use from this request. ``now`` is unix seconds (UTC hour)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    return RequestContext(
        path=parts.path or "/",
        device=device_class(headers.get("user-agent", "")),
        country=(country or headers.get("cf-ipcountry", "")).upper()[:2],
        referrer=referrer_class(
            headers.get("referer", ""), parts.hostname or "", query.get("utm_medium", "")
        ),
        utm_source=query.get("utm_source", "")[:64],
        utm_campaign=query.get("utm_campaign", "")[:64],
        hour=(now // 3600) % 24,
        weekday=(now // 86400 + 3) % 7,  # 1970-01-01 was a Thursday
        consent=has_consent(headers, cookies, consent),
    )


def is_speculative(headers: Mapping[str, str]) -> bool:
    """A prefetch or prerender the browser may never show (``Sec-Purpose: prefetch``, the older
    ``Purpose: prefetch``, Firefox's ``X-Moz: prefetch``): nothing about it is a page view."""
    purpose = " ".join(headers.get(h, "") for h in ("sec-purpose", "purpose", "x-moz"))
    return "prefetch" in purpose.lower() or "prerender" in purpose.lower()
