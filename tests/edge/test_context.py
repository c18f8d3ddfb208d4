from __future__ import annotations

import pytest

from edge.context import (
    ConsentPolicy,
    device_class,
    has_consent,
    is_speculative,
    parse_cookies,
    referrer_class,
)


@pytest.mark.parametrize(
    ("referer", "expected"),
    [
        ("", "direct"),
        ("https://shop.test/c/running", "internal"),
        ("https://www.google.com/search?q=boots", "search"),
        ("https://www.google.co.uk/", "search"),
        ("https://duckduckgo.com/", "search"),
        ("https://t.co/abc", "social"),
        ("https://m.facebook.com/", "social"),
        ("https://mail.google.com/", "email"),
        ("https://outlook.live.com/", "email"),
        ("https://www.walmart.com/", "other"),
        ("https://target.com/", "other"),
        ("https://www.fedex.com/", "other"),
        ("https://notgoogle.example/", "other"),
        ("not a url", "other"),
    ],
)
def test_referrer_classes(referer: str, expected: str) -> None:
    assert referrer_class(referer, "shop.test") == expected


def test_utm_medium_email_wins() -> None:
    assert referrer_class("https://www.google.com/", "shop.test", "email") == "email"


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", "mobile"),
        ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)", "tablet"),
        ("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0", "desktop"),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", "bot"),
        ("", "bot"),  # every browser sends a User-Agent
        ("curl/8.5.0", "bot"),
        ("python-requests/2.32.3", "bot"),
        ("Python-urllib/3.11", "bot"),
        ("Go-http-client/1.1", "bot"),
        ("Wget/1.21.4", "bot"),
        ("python-httpx/0.28.1", "bot"),
        ("okhttp/4.12.0", "bot"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Mobile Safari", "mobile"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari", "desktop"),
    ],
)
def test_device_classes(agent: str, expected: str) -> None:
    assert device_class(agent) == expected


def test_consent() -> None:
    opt_out, opt_in = ConsentPolicy(), ConsentPolicy(mode="opt-in")
    assert has_consent({}, {}, opt_out) and not has_consent({}, {}, opt_in)
    assert not has_consent({"sec-gpc": "1"}, {"ep_consent": "granted"}, opt_out)
    assert not has_consent({}, {"ep_consent": "denied"}, opt_out)
    assert has_consent({}, {"ep_consent": "granted"}, opt_in)
    assert parse_cookies('a=1; ep="x.y"; a=2; junk') == {"a": "1", "ep": "x.y"}


def test_speculative_requests() -> None:
    assert is_speculative({"sec-purpose": "prefetch"})
    assert is_speculative({"sec-purpose": "prefetch;prerender"})
    assert is_speculative({"purpose": "prefetch"}) and is_speculative({"x-moz": "prefetch"})
    assert not is_speculative({}) and not is_speculative({"sec-fetch-dest": "document"})


def test_kept_answers_are_bounded_in_count_and_length() -> None:
    """What a User-Agent or a referring host says is kept for the next request sending the
    same, within bounds: a visitor sending a new, huge one per request costs only the work."""
    from edge import context

    context._kept_device_class.cache_clear()
    huge = "Mozilla/5.0 (iPhone) " + "x" * 100_000
    assert device_class(huge) == "mobile"
    assert context._kept_device_class.cache_info().currsize == 0  # too long to keep
    for i in range(context.KEPT_ANSWERS + 10):
        assert device_class(f"agent-{i} (Android) Mobile") == "mobile"
    assert context._kept_device_class.cache_info().currsize == context.KEPT_ANSWERS
    assert device_class("Googlebot/2.1") == "bot" == device_class("Googlebot/2.1")
    context._kept_host_class.cache_clear()
    huge_host = "https://" + "a" * 100_000 + ".google.com/"
    assert referrer_class(huge_host, "shop.test") == "search"
    assert context._kept_host_class.cache_info().currsize == 0
    for i in range(context.KEPT_ANSWERS + 10):
        assert referrer_class(f"https://www.google.{i}/q", "shop.test") == "search"
    assert context._kept_host_class.cache_info().currsize == context.KEPT_ANSWERS
