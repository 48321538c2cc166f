"""Items: one by its EPC (where it is, and the trail of why the ledger says so), or a store's, filtered."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import StreamingResponse

from cloud.auth.deps import StockReader, require_stores_allowed
from cloud.epcs import EPC_PARAM_DESCRIPTION, parse_epc
from cloud.errors import ERROR_RESPONSES
from cloud.items import service
from cloud.items.schemas import ItemHistory, ItemList, ItemOut
from cloud.pagination import decode_cursor as decode_key
from cloud.params import decode_cursor, parse_gtins
from cloud.state import AppState
from cloud.stores.service import get_store
from tagledger.ledger.model import COUNTED_STATES, ItemState

router = APIRouter(prefix="/v1/items", tags=["items"], responses=ERROR_RESPONSES)
store_items_router = APIRouter(prefix="/v1/stores", tags=["items"], responses=ERROR_RESPONSES)

MAX_HISTORY_PAGE = 500
MAX_FILTER_VALUES = 100
CSV_COLUMNS = ("epc", "epc_uri", "gtin", "serial", "product", "state", "zone", "since", "confidence", "on_hand")


@router.get("/{epc}", response_model=ItemOut, summary="An item's current state")
async def get_item(
    epc: Annotated[str, Path(description=EPC_PARAM_DESCRIPTION)], state: AppState, principal: StockReader
) -> ItemOut:
    """Current state, zone and confidence of one item, with the GTIN and serial decoded from its EPC
    (hex in either case, or a pure-identity URN such as ``urn:epc:id:sgtin:0614141.812345.6789``) and
    the product master's name and category.
    """
    ledger = state["ledger"]
    item = await service.get_item(ledger, state["site"], await service.resolve_epc(ledger, parse_epc(epc)))
    require_stores_allowed(principal, [item.store_id])
    return item


@router.get("/{epc}/history", response_model=ItemHistory, summary="An item's history")
async def get_item_history(
    epc: Annotated[str, Path(description=EPC_PARAM_DESCRIPTION)],
    state: AppState,
    principal: StockReader,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE, description="Events per page (1-500).")] = 50,
    cursor: Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page.")] = None,
) -> ItemHistory:
    """The item's state changes, newest first, each with its evidence (reader, antenna, read batch).

    The EPC is hex or a pure-identity URN.  Pages backwards: pass the response's ``next_cursor`` as
    ``cursor`` until it is null.
    """
    before_id = None if cursor is None else decode_cursor(cursor)
    ledger = state["ledger"]
    the_epc = await service.resolve_epc(ledger, parse_epc(epc))
    if principal.stores is not None:
        # A store-limited key sees the histories of items now in its stores.
        item = await service.get_item(ledger, state["site"], the_epc)
        require_stores_allowed(principal, [item.store_id])
    return await service.get_history(ledger, the_epc, limit=limit, before_id=before_id)


@store_items_router.get(
    "/{store_id}/items",
    response_model=ItemList,
    summary="Items of a store, filtered",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def list_store_items(
    store_id: str,
    state: AppState,
    principal: StockReader,
    zone: Annotated[
        list[str] | None, Query(max_length=MAX_FILTER_VALUES, description="Only items in these zones (repeat).")
    ] = None,
    item_state: Annotated[
        list[ItemState] | None,
        Query(
            alias="state",
            max_length=MAX_FILTER_VALUES,
            description="Only items in these states (repeat); default: the states counted as on hand.",
        ),
    ] = None,
    gtin: Annotated[
        list[str] | None, Query(max_length=MAX_FILTER_VALUES, description="Only items of these GTINs (repeat).")
    ] = None,
    unobserved_for_s: Annotated[
        float | None,
        Query(
            ge=0,
            le=10 * 365 * 86_400,
            description="Only unobserved items (no read vouches for them) that have been so for at least this long;"
            " implies state=unobserved.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_ITEMS_PAGE, description="Items per page (1-1000).")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page; omit for the first.")
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> ItemList | StreamingResponse:
    """The store's items with their state, zone and product, sorted by EPC, a page at a time.

    Filters combine (all must hold).  ``unobserved_for_s`` lists the *missing* items: those the
    gateway marked ``unobserved`` at least that many seconds ago (the item's ``since``).  With
    ``Accept: text/csv`` the answer is a CSV file of every matching item (all pages, header row
    ``epc,epc_uri,gtin,serial,product,state,zone,since,confidence,on_hand``); ``limit`` and
    ``cursor`` then do not apply.
    """
    get_store(state["site"], store_id)
    states: list[str] | None
    if unobserved_for_s is not None:
        states = [ItemState.UNOBSERVED.value]
        since_before = state["clock"].now_us() - round(unobserved_for_s * 1_000_000)
    else:
        states = None if item_state is None else [s.value for s in item_state]
        since_before = None
    if states is None:
        states = sorted(s.value for s in COUNTED_STATES)
    what = service.ItemFilter(
        store_id=store_id,
        zones=zone,
        states=states,
        gtins=None if gtin is None else parse_gtins(gtin, field="gtin"),
        since_before_us=since_before,
    )
    if accept is not None and "text/csv" in accept.lower():
        return StreamingResponse(
            _csv(state, what),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{store_id}-items.csv"'},
        )
    after = None if cursor is None else decode_key(cursor, parts=1)[0]
    return await service.list_items(state["ledger"], state["site"], what, after_epc=after, limit=limit)


async def _csv(state: AppState, what: service.ItemFilter) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    after: str | None = None
    while True:
        page = await service.list_items(
            state["ledger"], state["site"], what, after_epc=after, limit=service.MAX_ITEMS_PAGE
        )
        for i in page.items:
            writer.writerow(
                (
                    i.epc,
                    i.epc_uri or "",
                    i.gtin or "",
                    i.serial or "",
                    i.product.name if i.product else "",
                    i.state.value,
                    i.zone or "",
                    i.since.isoformat().replace("+00:00", "Z"),
                    i.confidence,
                    "true" if i.on_hand else "false",
                )
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if page.next_cursor is None or not page.items:
            return
        after = page.items[-1].epc
