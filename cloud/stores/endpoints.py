"""Stores, their zones and readers, as the site file describes them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cloud.auth.deps import StaffOnly, StockReader, StoresReader
from cloud.errors import ERROR_RESPONSES
from cloud.pagination import decode_cursor, encode_cursor
from cloud.state import AppState
from cloud.stores import service
from cloud.stores.schemas import AnomalyList, ReaderStatusList, StoreList, StoreOut

MAX_PAGE = 1000

router = APIRouter(prefix="/v1/stores", tags=["stores"], responses=ERROR_RESPONSES)


@router.get("", response_model=StoreList, summary="List stores")
async def list_stores(
    state: AppState,
    principal: StoresReader,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="At most this many stores per page (1-1000).")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page; omit for the first.")
    ] = None,
) -> StoreList:
    """The stores of the site file (that the API key may see) sorted by id, with their coordinates, zones
    (and their roles) and readers, a page at a time: `next_cursor` is null on the last page.
    """
    after = None if cursor is None else decode_cursor(cursor, parts=1)[0]
    visible = sorted(
        (s for s in state["site"].stores if principal.may_see(s.id) and (after is None or s.id > after)),
        key=lambda s: s.id,
    )
    page = visible[:limit]
    more = len(visible) > limit
    return StoreList(
        stores=[service.store_out(s) for s in page], next_cursor=encode_cursor([page[-1].id]) if more else None
    )


@router.get("/{store_id}", response_model=StoreOut, summary="Get one store")
async def get_store(store_id: str, state: AppState, principal: StoresReader) -> StoreOut:
    """One store: coordinates, time zone, GLN, zones with their roles, readers with their antennas."""
    return service.store_out(service.get_store(state["site"], store_id))


@router.get("/{store_id}/readers", response_model=ReaderStatusList, summary="Readers of a store")
async def list_readers(store_id: str, state: AppState, principal: StaffOnly) -> ReaderStatusList:
    """The store's readers (address, model, profile, antenna-to-zone mapping) with the last status each
    reader's agent reported to the ledger: which reader is down, since when.  ``unknown`` when none;
    ``stale`` when the agent said online (or reader down) but its heartbeats stopped.
    """
    store = service.get_store(state["site"], store_id)
    return await service.reader_statuses(state["ledger"], store, now_us=state["clock"].now_us())


@router.get("/{store_id}/anomalies", response_model=AnomalyList, summary="Tag anomalies of a store")
async def list_anomalies(store_id: str, state: AppState, principal: StockReader) -> AnomalyList:
    """What the gateway found wrong with the tags themselves, per store and GTIN, with the evidence:
    an EPC encoded on two tags (read strongly, at the same moments, in two zones that cannot both hold
    one item: its items are in state ``duplicated`` and kept out of every count), and barcode sales of
    a product none of whose items the readers ever saw (untagged stock: no tagged item is sold for them).
    """
    return await service.anomalies(state["ledger"], service.get_store(state["site"], store_id))
