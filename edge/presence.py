"""Which slots a page holds, remembered per path, so a page can stream.

The cookie a page sets (its ``Set-Cookie`` header) must name the decisions the page shows, and
headers go before the body: to stream a page, the edge must know which slots it holds before
the rewriter has seen them. An isolate learns that from the pages it has rewritten: the first
logged view of a path in an isolate is buffered (the slots found are then exact) and later
views of that path stream, expecting the slots found last time. What a streamed view really
showed is still what is logged (its exposures are shipped once the document has passed); when
a page changes its slots, the view that finds out updates the memory.

Keyed by the origin path the page came from (a page slot's variant path where one was served),
since that is what decides the markup. Bounded: at most ``capacity`` paths, least recently used
first out.
"""

from __future__ import annotations

from collections import OrderedDict

CAPACITY = 4096


class SlotPresence:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.paths: OrderedDict[str, frozenset[str]] = OrderedDict()
        self.streamed = 0
        self.buffered = 0
        self.mismatches = 0  # streamed views whose page held other slots than expected

    def expected(self, path: str) -> frozenset[str] | None:
        """The slots this path's page held last time (None: not seen by this isolate)."""
        found = self.paths.get(path)
        if found is not None:
            self.paths.move_to_end(path)
        return found

    def learn(self, path: str, found: set[str], expected: frozenset[str] | None = None) -> None:
        if expected is not None and frozenset(found) != expected:
            self.mismatches += 1
        self.paths[path] = frozenset(found)
        self.paths.move_to_end(path)
        while len(self.paths) > self.capacity:
            self.paths.popitem(last=False)

    def as_dict(self) -> dict[str, int]:
        return {
            "paths": len(self.paths),
            "streamed": self.streamed,
            "buffered": self.buffered,
            "mismatches": self.mismatches,
        }
