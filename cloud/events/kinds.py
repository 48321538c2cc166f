"""What kind of happening a ledger event is, for people reading a store's feed.  No I/O.

Each event has exactly one kind; the SQL condition of each kind selects exactly
the events :func:`kind_of` gives that kind, so a filtered feed pages correctly.

* ``sale``: the item was sold (POS transaction or POS read);
* ``exit``: an unsold item is leaving (``exiting``) or left (``departed_exit``);
* ``return``: a sold item was seen in the store again;
* ``arrival``: an item the store did not know appeared;
* ``move``: an item changed zones;
* ``unobserved``: an item went without reads long enough to be unconfirmed;
* ``seen``: anything else (an unobserved item read again in its zone).
"""

from __future__ import annotations

from enum import StrEnum

from tagledger.ledger.model import ItemState, Transition


class EventKind(StrEnum):
    SALE = "sale"
    EXIT = "exit"
    RETURN = "return"
    ARRIVAL = "arrival"
    MOVE = "move"
    UNOBSERVED = "unobserved"
    SEEN = "seen"


_IN_STORE = "('present', 'unobserved')"
_ZONE_CHANGED = "coalesce(from_zone, '') <> coalesce(to_zone, '')"

#: The SQL condition (over the events table's columns) of each kind.
CONDITIONS: dict[EventKind, str] = {
    EventKind.SALE: "to_state = 'sold'",
    EventKind.EXIT: "to_state IN ('exiting', 'departed_exit')",
    EventKind.RETURN: "to_state = 'returned'",
    EventKind.ARRIVAL: f"to_state IN {_IN_STORE} AND from_state IS NULL",
    EventKind.MOVE: f"to_state IN {_IN_STORE} AND from_state IS NOT NULL AND {_ZONE_CHANGED}",
    # 'missing' (silent far beyond its own read rate, no longer counted) is the end of being unobserved.
    EventKind.UNOBSERVED: f"(to_state = 'missing' OR (to_state = 'unobserved' AND from_state IS NOT NULL"
    f" AND NOT ({_ZONE_CHANGED})))",
    EventKind.SEEN: f"to_state = 'present' AND from_state IS NOT NULL AND NOT ({_ZONE_CHANGED})",
}


def kind_of(t: Transition) -> EventKind:
    if t.to_state is ItemState.SOLD:
        return EventKind.SALE
    if t.to_state in (ItemState.EXITING, ItemState.DEPARTED_EXIT):
        return EventKind.EXIT
    if t.to_state is ItemState.RETURNED:
        return EventKind.RETURN
    if t.to_state is ItemState.MISSING:
        return EventKind.UNOBSERVED
    if t.from_state is None:
        return EventKind.ARRIVAL
    if (t.from_zone or "") != (t.to_zone or ""):
        return EventKind.MOVE
    if t.to_state is ItemState.UNOBSERVED:
        return EventKind.UNOBSERVED
    return EventKind.SEEN
