"""A store's stock by GTIN x zone, current or as of a past moment (for auditors)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from cloud.auth.deps import StockReader
from cloud.errors import ERROR_RESPONSES
from cloud.pagination import decode_cursor, encode_cursor
from cloud.params import parse_as_of, parse_gtins
from cloud.state import AppState
from cloud.stock import service
from cloud.stock.schemas import StockOut
from cloud.stores.service import get_store

router = APIRouter(prefix="/v1", tags=["stock"], responses=ERROR_RESPONSES)

MAX_STOCK_GTINS = 100
MAX_STOCK_PAGE = 10_000


@router.get("/stores/{store_id}/stock", response_model=StockOut, summary="Stock of a store, now or in the past")
async def get_stock(
    store_id: str,
    state: AppState,
    principal: StockReader,
    as_of: Annotated[
        datetime | None,
        Query(description="RFC 3339 time with an offset (e.g. 2026-01-01T12:00:00Z); omit for current stock."),
    ] = None,
    gtin: Annotated[
        list[str] | None,
        Query(max_length=MAX_STOCK_GTINS, description="Restrict to these GTINs (repeat the parameter; at most 100)."),
    ] = None,
    zone: Annotated[
        list[str] | None, Query(max_length=MAX_STOCK_GTINS, description="Restrict to these zones (repeat).")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_STOCK_PAGE, description="At most this many entries per page (1-10000).")
    ] = 1000,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page; omit for the first.")
    ] = None,
) -> StockOut:
    """Item counts of one store by GTIN x zone (and by state), rebuilt from the ledger's events when
    ``as_of`` names a past moment.  A time without an offset is refused (422 ``naive_datetime``), as
    is one in the future (422 ``as_of_in_future``).  Entries come a page at a time (sorted by GTIN then
    zone; ``next_cursor`` null on the last page); ``on_hand`` is the store's total over every page (of
    the zones asked for, when ``zone`` is given).  Each entry names its product (from the site file's
    product master) and splits ``on_hand`` into ``sellable`` (reads vouch for it) and
    ``unconfirmed``.
    """
    get_store(state["site"], store_id)
    now_us = state["clock"].now_us()
    as_of_us = None if as_of is None else parse_as_of(as_of, now_us=now_us)
    gtins = None if gtin is None else parse_gtins(gtin, field="gtin")
    after = None if cursor is None else decode_cursor(cursor, parts=2)
    out = await service.store_stock(
        state["ledger"], store_id, gtins=gtins, as_of_us=as_of_us, now_us=now_us, zones=zone, site=state["site"]
    )
    if after is not None:
        out.entries = [e for e in out.entries if (e.gtin, e.zone) > (after[0], after[1])]
    if len(out.entries) > limit:
        out.entries = out.entries[:limit]
        out.next_cursor = encode_cursor([out.entries[-1].gtin, out.entries[-1].zone])
    return out
