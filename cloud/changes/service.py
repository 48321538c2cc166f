"""Reading a store's availability changes for a stream: the SSE endpoint and the webhook deliverer."""

from __future__ import annotations

from cloud.changes.cursor import Cursor
from tagledger.ledger.channel import ChannelStore

#: Item events read per look (a burst is announced over several looks).
MAX_EVENTS_PER_POLL = 1_000
#: Hold changes read per look (likewise; see ``cloud.changes.cursor``, "Bursts").
MAX_HOLD_CHANGES_PER_POLL = 1_000


async def next_changes(ledger: ChannelStore, store_id: str, cursor: Cursor) -> list[tuple[str, str]]:
    """The GTINs of ``store_id`` to announce next, each with its stream id; moves ``cursor`` past them."""
    events = await ledger.changed_gtins(store_id, cursor.event_id, limit=MAX_EVENTS_PER_POLL)
    holds = await ledger.changed_holds(store_id, cursor.hold_position(), limit=MAX_HOLD_CHANGES_PER_POLL)
    return cursor.step(events, holds, hold_page=MAX_HOLD_CHANGES_PER_POLL)
