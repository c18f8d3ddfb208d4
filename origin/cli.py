"""The origin's ``edgepick`` subcommands (serve, publish, history, diff, rollback, sync)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the origin's subcommands to the ``edgepick`` parser."""
