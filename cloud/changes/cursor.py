"""Where a change stream stands, and the ids it sends.  No I/O.

A store's availability changes when an item event commits (the gateway) and
when a hold changes (a reservation made, confirmed, released, expired or
picked).  A stream follows both: item events by their id, holds by the time
of their last change, and each message's SSE ``id`` carries both marks as
``"<event id>.<hold µs>"``, so ``Last-Event-ID`` resumes both.  A plain
``"<event id>"`` (what streams sent before holds were followed) resumes the
events and starts the holds from now.

Holds are found by ``updated_at >= mark - HOLD_OVERLAP_US``: a hold's change
time is taken before its transaction commits, so a change can become visible
after a later one was already read.  Reading a few seconds back catches it;
the changes already announced in that window are remembered and skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

#: How far back each poll looks for hold changes (a hold's transaction takes milliseconds).
HOLD_OVERLAP_US = 5_000_000


def parse_id(value: str | None) -> tuple[int, int | None] | None:
    """``(event id, hold µs or None)`` of a ``Last-Event-ID``; None if it is not one of ours."""
    if not value:
        return None
    event, _, hold = value.partition(".")
    if not event.isdigit() or (hold and not hold.isdigit()) or len(value) > 40:
        return None
    return int(event), int(hold) if hold else None


class Cursor:
    def __init__(self, event_id: int, hold_us: int) -> None:
        self.event_id = event_id
        self.hold_us = hold_us
        self._floor = hold_us  # changes at or before the start were announced, or predate the stream
        self._seen: dict[tuple[str, int], None] = {}  # (hold id, change µs) announced within the overlap

    @property
    def id(self) -> str:
        return f"{self.event_id}.{self.hold_us}"

    @property
    def marks(self) -> tuple[int, int]:
        """``(event id, hold µs)``: where a resumed stream starts (as ``Cursor(*marks)``)."""
        return self.event_id, self.hold_us

    def hold_since(self) -> int:
        """Where the next look for hold changes starts (µs)."""
        return max(0, self.hold_us - HOLD_OVERLAP_US)

    def step(self, events: Sequence[tuple[int, str]], holds: Sequence[tuple[int, str, str]]) -> list[tuple[str, str]]:
        """The GTINs to announce, in order, each with its SSE id; moves the marks past what was read.

        ``events``: (event id, GTIN) after ``event_id``, oldest first.  ``holds``:
        (change µs, hold id, GTIN) since :meth:`hold_since`, oldest first.
        Event-changed GTINs come first, oldest last change first, each with the
        id of its last event (and the hold mark as it was): a client resuming
        after any of them gets again exactly what changed since.  GTINs changed
        only by holds follow, by their last hold change.  A GTIN is announced
        once per step; its message carries its availability as of then, holds
        and items together.
        """
        last_event: dict[str, int] = {}
        for event_id, gtin in events:
            last_event[gtin] = event_id
        out = [(g, f"{i}.{self.hold_us}") for g, i in sorted(last_event.items(), key=lambda gi: gi[1])]
        if events:
            self.event_id = max(self.event_id, events[-1][0])
        last_hold: dict[str, int] = {}
        for at_us, hold_id, gtin in holds:
            if at_us <= self._floor or (hold_id, at_us) in self._seen:
                continue
            self._seen[(hold_id, at_us)] = None
            last_hold[gtin] = max(at_us, last_hold.get(gtin, 0))
            self.hold_us = max(self.hold_us, at_us)
        horizon = self.hold_since()
        self._seen = {k: None for k in self._seen if k[1] >= horizon}
        out += [
            (g, f"{self.event_id}.{u}")
            for g, u in sorted(last_hold.items(), key=lambda gu: gu[1])
            if g not in last_event
        ]
        return out
