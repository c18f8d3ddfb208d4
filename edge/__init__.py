"""The edge worker: request interception, snapshot cache, cookie I/O, HTML rewriting, events."""
