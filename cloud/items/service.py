# ruff: noqa: S608  -- SQL text is assembled from constants and numbered placeholders; values are always bound.
"""Items by EPC: current state and history, from the ledger; a store's items, filtered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cloud.epcs import EpcRef, epc_uri
from cloud.errors import ItemNotFound
from cloud.items.schemas import BatchRef, EventOut, ItemHistory, ItemList, ItemOut, ProductOut
from cloud.pagination import encode_cursor as encode_key
from cloud.params import encode_cursor
from tagledger.clock import us_to_datetime
from tagledger.ledger import rows
from tagledger.ledger.model import COUNTED_STATES, EventRecord, ItemRecord
from tagledger.ledger.repository import LedgerReader
from tagledger.site import Site

#: Items per page of a listing at most; a CSV listing streams every page.
MAX_ITEMS_PAGE = 1000


async def resolve_epc(ledger: LedgerReader, ref: EpcRef) -> str:
    """The hex EPC the ledger knows for what the caller named (a URN may stand for several)."""
    if len(ref.candidates) == 1:
        return ref.candidates[0]
    marks = ", ".join(f"${i}" for i in range(1, len(ref.candidates) + 1))
    found = await ledger.fetch(f"SELECT epc FROM items WHERE epc IN ({marks}) ORDER BY epc", *ref.candidates)
    if not found:
        raise ItemNotFound(ref.given)
    return str(found[0][0])


def item_out(item: ItemRecord, site: Site) -> ItemOut:
    return ItemOut(
        epc=item.epc,
        epc_uri=epc_uri(item.epc),
        store_id=item.store_id,
        scheme=item.scheme,
        gtin=item.gtin,
        serial=item.serial,
        product=ProductOut.of(site, item.gtin),
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


async def get_item(ledger: LedgerReader, site: Site, epc: str) -> ItemOut:
    item = await ledger.item(epc)
    if item is None:
        raise ItemNotFound(epc)
    return item_out(item, site)


async def get_history(ledger: LedgerReader, epc: str, *, limit: int, before_id: int | None) -> ItemHistory:
    # One row more than asked tells whether another page exists without a count query.
    events = await ledger.item_history(epc, limit=limit + 1, before_id=before_id)
    if not events and before_id is None and await ledger.item(epc) is None:
        raise ItemNotFound(epc)
    page = events[:limit]
    next_cursor = encode_cursor(page[-1].id) if len(events) > limit else None
    return ItemHistory(epc=epc, epc_uri=epc_uri(epc), events=[event_out(e) for e in page], next_cursor=next_cursor)


@dataclass(frozen=True, slots=True)
class ItemFilter:
    """What a listing keeps: every given condition must hold (None: no condition)."""

    store_id: str
    zones: Sequence[str] | None = None
    states: Sequence[str] | None = None
    gtins: Sequence[str] | None = None
    since_before_us: int | None = None  # the item's current state began at or before this time

    def sql(self, after_epc: str | None, limit: int) -> tuple[str, list[object]]:
        args: list[object] = [self.store_id]
        where = ["store_id = $1"]

        def one_of(column: str, values: Sequence[object]) -> None:
            marks = []
            for v in values:
                args.append(v)
                marks.append(f"${len(args)}")
            where.append(f"{column} IN ({', '.join(marks)})")

        if self.zones is not None:
            one_of("zone", self.zones)
        if self.states is not None:
            one_of("state", self.states)
        if self.gtins is not None:
            one_of("gtin", self.gtins)
        if self.since_before_us is not None:
            args.append(self.since_before_us)
            where.append(f"since <= ${len(args)}")
        if after_epc is not None:
            args.append(after_epc)
            where.append(f"epc > ${len(args)}")
        args.append(limit)
        sql = f"SELECT {rows.ITEM_COLUMNS} FROM items WHERE {' AND '.join(where)} ORDER BY epc LIMIT ${len(args)}"
        return sql, args


async def list_items(
    ledger: LedgerReader, site: Site, what: ItemFilter, *, after_epc: str | None, limit: int
) -> ItemList:
    """One page in EPC order; ``next_cursor`` carries the page's last EPC (a key-set cursor)."""
    sql, args = what.sql(after_epc, limit + 1)
    found = [rows.item(r) for r in await ledger.fetch(sql, *args)]
    page = found[:limit]
    more = len(found) > limit
    return ItemList(
        store_id=what.store_id,
        items=[item_out(i, site) for i in page],
        next_cursor=encode_key([page[-1].epc]) if more else None,
    )
