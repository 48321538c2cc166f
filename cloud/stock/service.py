"""A store's stock by GTIN x zone, now or at a past moment."""

from __future__ import annotations

from collections.abc import Sequence

from cloud.availability.rules import CONFIRMED_STATES
from cloud.items.schemas import ProductOut
from cloud.stock.schemas import StockEntry, StockOut
from tagledger.clock import us_to_datetime
from tagledger.ledger.model import COUNTED_STATES, ItemState
from tagledger.ledger.repository import LedgerReader
from tagledger.site import Site


def _product(site: Site | None, gtin: str) -> ProductOut | None:
    return ProductOut.of(site, gtin) if site is not None else None


async def store_stock(
    ledger: LedgerReader,
    store_id: str,
    *,
    gtins: Sequence[str] | None,
    as_of_us: int | None,
    now_us: int,
    zones: Sequence[str] | None = None,
    site: Site | None = None,
) -> StockOut:
    rows = await ledger.stock(store_id, gtins=gtins, as_of_us=as_of_us)
    if zones is not None:
        wanted = set(zones)
        rows = [r for r in rows if r.zone in wanted]
    cells: dict[tuple[str, str], dict[ItemState, int]] = {}
    for row in rows:
        if row.count <= 0:
            continue
        by_state = cells.setdefault((row.gtin, row.zone), {})
        by_state[row.state] = by_state.get(row.state, 0) + row.count
    entries = [
        StockEntry(
            gtin=gtin,
            zone=zone,
            product=_product(site, gtin),
            on_hand=sum(n for state, n in by_state.items() if state in COUNTED_STATES),
            sellable=sum(n for state, n in by_state.items() if state in CONFIRMED_STATES),
            unconfirmed=sum(n for state, n in by_state.items() if state in COUNTED_STATES - CONFIRMED_STATES),
            by_state=dict(sorted(by_state.items())),
        )
        for (gtin, zone), by_state in sorted(cells.items())
    ]
    return StockOut(
        store_id=store_id,
        as_of=us_to_datetime(now_us if as_of_us is None else as_of_us),
        current=as_of_us is None,
        on_hand=sum(e.on_hand for e in entries),
        entries=entries,
    )
