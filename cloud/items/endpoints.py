"""One item by its EPC: where it is, and the trail of why the ledger says so."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cloud.auth.deps import StockReader, require_stores_allowed
from cloud.errors import ERROR_RESPONSES
from cloud.items import service
from cloud.items.schemas import ItemHistory, ItemOut
from cloud.params import decode_cursor
from cloud.state import AppState

router = APIRouter(prefix="/v1/items", tags=["items"], responses=ERROR_RESPONSES)

MAX_HISTORY_PAGE = 500


@router.get("/{epc}", response_model=ItemOut, summary="An item's current state")
async def get_item(epc: str, state: AppState, principal: StockReader) -> ItemOut:
    """Current state, zone and confidence of one item, with the GTIN and serial decoded from its EPC
    (hex, either case) and the product master's name and category.
    """
    item = await service.get_item(state["ledger"], state["site"], service.parse_epc(epc))
    require_stores_allowed(principal, [item.store_id])
    return item


@router.get("/{epc}/history", response_model=ItemHistory, summary="An item's history")
async def get_item_history(
    epc: str,
    state: AppState,
    principal: StockReader,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE, description="Events per page (1-500).")] = 50,
    cursor: Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page.")] = None,
) -> ItemHistory:
    """The item's state changes, newest first, each with its evidence (reader, antenna, read batch).

    Pages backwards: pass the response's ``next_cursor`` as ``cursor`` until it is null.
    """
    before_id = None if cursor is None else decode_cursor(cursor)
    the_epc = service.parse_epc(epc)
    if principal.stores is not None:
        # A store-limited key sees the histories of items now in its stores.
        item = await service.get_item(state["ledger"], state["site"], the_epc)
        require_stores_allowed(principal, [item.store_id])
    return await service.get_history(state["ledger"], the_epc, limit=limit, before_id=before_id)
