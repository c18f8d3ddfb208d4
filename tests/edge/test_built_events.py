"""The page's events are built by ``core.events``' constructors and shipped without a second
check on the request path (``edge.delivery.ship(built=True)``): whatever a visitor sends, every
one of them must pass the collector's check (``Edge.shipped`` asserts ``events.problem``)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.edge import local

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)
paths = st.one_of(
    st.sampled_from(["/", "/c/running", "/p/run-trail-shoe", "/cart"]),
    text.map(lambda t: "/" + t.replace("?", "").replace("#", "")),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=paths,
    query=text,
    agent=text,
    referer=text,
    country=st.text(max_size=4),
    language=text,
)
def test_events_built_from_any_request_pass_the_collectors_check(
    fixture_blob: bytes,
    path: str,
    query: str,
    agent: str,
    referer: str,
    country: str,
    language: str,
) -> None:
    edge = local.Edge(fixture_blob)
    for _ in range(2):  # the second view of a path streams (edge.presence)
        edge.jar.clear()
        edge.io.pages.setdefault(path, local.pages()["/"])
        edge.request(
            f"{path}?{query.replace('#', '')}",
            country=country,
            user_agent=agent or local.UA_DESKTOP,
            referer=referer,
            accept_language=language,
        )
    edge.shipped()  # asserts every shipped event passes core.events.problem
