"""Where a change stream stands, and the ids it sends.  No I/O.

A store's availability changes when an item event commits (the gateway) and
when a hold changes (a reservation made, confirmed, released, expired or
picked).  A stream follows both: item events by their id, holds by the time
of their last change (``holds.updated_at``), and each message's SSE ``id``
carries both marks as ``"<event id>.<hold µs>"``, so ``Last-Event-ID`` resumes
both.  Ids never go backwards along a stream.  A plain ``"<event id>"`` (what
streams sent before holds were followed) resumes the events and starts the
holds from now.

Late commits
    A hold's change time is taken by the API process before its transaction
    commits, so a change can become visible after a later one was already
    read.  Each look for hold changes therefore starts ``HOLD_OVERLAP_US``
    before the mark, and the changes already announced in that window are
    remembered and skipped; a resumed stream starts the same distance back
    and may announce a few changes again (an availability message is a
    snapshot: receiving one twice is harmless).  The window covers a
    transaction's run and the clock skew between API processes; a change
    that commits later than that after its time is announced with the next
    change of its GTIN.

Bursts
    A look reads at most a page of hold changes.  A full page (a sweep that
    expired thousands of holds at one instant) is continued from its last row
    by (time, hold id) at the next look, so a burst larger than a page is
    announced over several looks instead of being read again and again.
"""

from __future__ import annotations

from collections.abc import Sequence

#: How far back each look for hold changes starts (a hold's transaction takes milliseconds).
HOLD_OVERLAP_US = 5_000_000

#: Where a look for hold changes starts: (µs, hold id), rows strictly after it.
HoldPosition = tuple[int, str]


def parse_id(value: str | None) -> tuple[int, int | None] | None:
    """``(event id, hold µs or None)`` of a ``Last-Event-ID``; None if it is not one of ours."""
    if not value or len(value) > 40:
        return None
    event, _, hold = value.partition(".")
    if not event.isdigit() or (hold and not hold.isdigit()):
        return None
    return int(event), int(hold) if hold else None


class Cursor:
    """A stream's marks.  Make one with :meth:`fresh` (changes from now on) or :meth:`resume`."""

    def __init__(self, event_id: int, hold_us: int, *, floor_us: int) -> None:
        self.event_id = event_id
        self.hold_us = hold_us
        self._floor = floor_us  # hold changes at or before this are not announced
        self._seen: dict[tuple[str, int], None] = {}  # (hold id, change µs) announced within the overlap
        self._continue: HoldPosition | None = None  # after a full page: where the next look goes on

    @classmethod
    def fresh(cls, event_id: int, now_us: int) -> Cursor:
        """Events after ``event_id``, holds changed after ``now_us``: no hold change from before is announced."""
        return cls(event_id, now_us, floor_us=now_us)

    @classmethod
    def resume(cls, event_id: int, hold_us: int) -> Cursor:
        """From saved marks, reading the overlap again (see the module docstring)."""
        return cls(event_id, hold_us, floor_us=hold_us - HOLD_OVERLAP_US)

    @property
    def id(self) -> str:
        return f"{self.event_id}.{self.hold_us}"

    @property
    def marks(self) -> tuple[int, int]:
        """``(event id, hold µs)``: what to save to :meth:`resume` from."""
        return self.event_id, self.hold_us

    def hold_position(self) -> HoldPosition:
        """Where the next look for hold changes starts: rows after this (time µs, hold id)."""
        if self._continue is not None:
            return self._continue
        return max(0, self.hold_us - HOLD_OVERLAP_US, self._floor), ""

    def step(
        self, events: Sequence[tuple[int, str]], holds: Sequence[tuple[int, str, str]], *, hold_page: int
    ) -> list[tuple[str, str]]:
        """The GTINs to announce, in order, each with its SSE id; moves the marks past what was read.

        ``events``: (event id, GTIN) after ``event_id``, oldest first.  ``holds``:
        (change µs, hold id, GTIN) after :meth:`hold_position`, by (time, id),
        at most ``hold_page`` of them.  Event-changed GTINs come first, oldest
        last change first, each with the id of its last event (and the hold mark
        as it was): a client resuming after any of them gets again everything
        changed since.  GTINs changed only by holds follow, by their last hold
        change, with the new marks.  A GTIN is announced once per step; its
        message carries its availability as of then, holds and items together.
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
        self._continue = (holds[-1][0], holds[-1][1]) if len(holds) >= hold_page else None
        horizon = self.hold_us - HOLD_OVERLAP_US
        self._seen = {k: None for k in self._seen if k[1] >= horizon}
        out += [(g, self.id) for g, _ in sorted(last_hold.items(), key=lambda gu: gu[1]) if g not in last_event]
        return out
