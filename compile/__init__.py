"""Authoring side: config -> validated snapshot, explanations, and the `edgepick` CLI."""
