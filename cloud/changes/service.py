"""Reading a store's availability changes for a stream: the SSE endpoint and the webhook deliverer."""

from __future__ import annotations

from cloud.changes.cursor import Cursor
from cloud.changes.repository import changed_gtins
from cloud.reservations.repository import changed_holds
from tagledger.ledger.repository import Ledger

#: Item events read per look (a burst is announced over several looks).
MAX_EVENTS_PER_POLL = 1_000
#: Hold changes read per look (likewise; see ``cloud.changes.cursor``, "Bursts").
MAX_HOLD_CHANGES_PER_POLL = 1_000


async def next_changes(ledger: Ledger, store_id: str, cursor: Cursor) -> list[tuple[str, str]]:
    """The GTINs of ``store_id`` to announce next, each with its stream id; moves ``cursor`` past them."""
    events = await changed_gtins(ledger, store_id, cursor.event_id, limit=MAX_EVENTS_PER_POLL)
    holds = await changed_holds(ledger, store_id, cursor.hold_position(), limit=MAX_HOLD_CHANGES_PER_POLL)
    return cursor.step(events, holds, hold_page=MAX_HOLD_CHANGES_PER_POLL)
