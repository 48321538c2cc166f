"""Per-item deadlines of the state machine: a heap with at most one live entry per item.

Reads only ever push an item's deadline later, so they queue nothing: the entry
is re-checked when it falls due (lazy), and re-pushed at the new time if the
deadline moved.  Only a change that brings the deadline forward queues a second
entry; the superseded one is recognised (``queued != item.due_us``) and skipped
when popped.  ``tick`` therefore never scans the inventory.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

from gateway.item import TrackedItem


class Deadlines:
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str]] = []  # (due_us, tie, epc)
        self._tie = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, item: TrackedItem, due_us: int) -> None:
        item.due_us = due_us
        heapq.heappush(self._heap, (due_us, next(self._tie), item.epc))

    def want(self, item: TrackedItem, due_us: int | None) -> None:
        """Queue ``due_us`` for the item unless an entry at or before it is queued already."""
        if due_us is not None and not (item.due_us and item.due_us <= due_us):
            self.push(item, due_us)

    def pop(self, now_us: int, lookup: Callable[[str], TrackedItem | None]) -> TrackedItem | None:
        """The next item whose queued deadline is at or before ``now_us`` (its ``due_us`` cleared), or None."""
        heap = self._heap
        while heap and heap[0][0] <= now_us:
            queued, _, epc = heapq.heappop(heap)
            item = lookup(epc)
            if item is None or queued != item.due_us:
                continue
            item.due_us = 0
            return item
        return None
