"""Items by EPC: current state and history, from the ledger."""

from __future__ import annotations

from cloud.errors import InvalidParameter, ItemNotFound
from cloud.items.schemas import BatchRef, EventOut, ItemHistory, ItemOut, ProductOut
from cloud.params import encode_cursor
from tagledger.clock import us_to_datetime
from tagledger.ledger.model import COUNTED_STATES, EventRecord, ItemRecord
from tagledger.ledger.repository import Ledger
from tagledger.site import Site

# Same bounds as the wire contract's EpcHex: 16-bit minimum, 496-bit EPCs at most.
_EPC_MIN_HEX = 4
_EPC_MAX_HEX = 124
_HEX = frozenset("0123456789ABCDEF")


def parse_epc(value: str) -> str:
    """EPC hex, upper-cased (the ledger stores upper case; callers may send either)."""
    epc = value.upper()
    if not (_EPC_MIN_HEX <= len(epc) <= _EPC_MAX_HEX and set(epc) <= _HEX):
        raise InvalidParameter(
            f"an EPC is {_EPC_MIN_HEX} to {_EPC_MAX_HEX} hexadecimal digits",
            code="invalid_epc",
            details={"value": value},
        )
    return epc


def item_out(item: ItemRecord, site: Site) -> ItemOut:
    product = site.product(item.gtin) if item.gtin else None
    return ItemOut(
        epc=item.epc,
        store_id=item.store_id,
        scheme=item.scheme,
        gtin=item.gtin,
        serial=item.serial,
        product=ProductOut(name=product.name, category=product.category) if product else None,
        state=item.state,
        zone=item.zone,
        on_hand=item.state in COUNTED_STATES,
        since=us_to_datetime(item.since_us),
        confidence=item.confidence,
    )


def event_out(event: EventRecord) -> EventOut:
    t = event.transition
    return EventOut(
        id=event.id,
        at=us_to_datetime(t.at_us),
        recorded_at=us_to_datetime(event.recorded_at_us),
        store_id=t.store_id,
        from_store_id=t.from_store_id,
        from_state=t.from_state,
        to_state=t.to_state,
        from_zone=t.from_zone,
        to_zone=t.to_zone,
        confidence=t.confidence,
        reason=t.reason,
        reader_id=t.reader_id,
        antenna=t.antenna,
        batch=BatchRef(reader_id=t.batch.reader_id, boot_id=t.batch.boot_id, seq=t.batch.seq) if t.batch else None,
    )


async def get_item(ledger: Ledger, site: Site, epc: str) -> ItemOut:
    item = await ledger.item(epc)
    if item is None:
        raise ItemNotFound(epc)
    return item_out(item, site)


async def get_history(ledger: Ledger, epc: str, *, limit: int, before_id: int | None) -> ItemHistory:
    # One row more than asked tells whether another page exists without a count query.
    events = await ledger.item_history(epc, limit=limit + 1, before_id=before_id)
    if not events and before_id is None and await ledger.item(epc) is None:
        raise ItemNotFound(epc)
    page = events[:limit]
    next_cursor = encode_cursor(page[-1].id) if len(events) > limit else None
    return ItemHistory(epc=epc, events=[event_out(e) for e in page], next_cursor=next_cursor)
