"""Origin test setup."""

from __future__ import annotations

import warnings

# starlette's TestClient warns at import that it prefers a future httpx; the tests use the
# httpx that the project pins, so import it once here with that warning silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import starlette.testclient  # noqa: F401
