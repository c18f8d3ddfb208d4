"""Names of the environment variables the origin reads (kept free of heavy imports, for the CLI)."""

from __future__ import annotations

SECRET_ENV = "EDGEPICK_SECRET"  # the collector's event signing secret
PREVIOUS_SECRETS_ENV = "EDGEPICK_PREVIOUS_SECRETS"  # comma-separated, during a rotation
