"""Why a slot got its variant: the ``reason`` every decision and exposure carries."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    PREVIEW = "preview"
    HOLDOUT = "holdout"
    RULE = "rule"
    DEFAULT = "default"
    POLICY = "policy"
    FALLBACK = "fallback"
    CACHED = "cached"  # reused from this session (the edge's response caching)
