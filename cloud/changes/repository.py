"""What a change stream reads of the ledger: the newest event id, and a store's item events after one."""

from __future__ import annotations

from tagledger.ledger.queries import LAST_EVENT_ID
from tagledger.ledger.repository import LedgerReader

# A range scan of the events' primary key from the stream's high-water mark.
_CHANGED_GTINS = """SELECT id, gtin FROM events WHERE id > $1 AND (store_id = $2 OR from_store_id = $2)
 AND gtin IS NOT NULL ORDER BY id LIMIT $3"""


async def latest_event_id(ledger: LedgerReader) -> int:
    """The highest ``events.id`` (0 when empty): where a change stream starts."""
    ((latest,),) = await ledger.fetch(LAST_EVENT_ID)
    return int(latest)


async def changed_gtins(ledger: LedgerReader, store_id: str, after_id: int, *, limit: int) -> list[tuple[int, str]]:
    """(event id, GTIN) of the store's item events after ``after_id``, oldest first."""
    return [(int(i), g) for i, g in await ledger.fetch(_CHANGED_GTINS, after_id, store_id, limit)]
