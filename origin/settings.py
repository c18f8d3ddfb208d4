"""Names of the environment variables the origin reads (kept free of heavy imports, for the CLI)."""

from __future__ import annotations

SECRET_ENV = "EDGEPICK_SECRET"  # the collector's event signing secret
PREVIOUS_SECRETS_ENV = "EDGEPICK_PREVIOUS_SECRETS"  # comma-separated, during a rotation
LAKE_ENV = "EDGEPICK_LAKE"  # a lake directory: sync rounds go through it (origin.lake)
LAKE_ENGINE_ENV = "EDGEPICK_LAKE_ENGINE"  # duckdb (the default) or spark
