"""Stores, their zones and readers, as the site file describes them."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.auth.deps import StaffOnly, StoresReader
from cloud.errors import ERROR_RESPONSES
from cloud.state import AppState
from cloud.stores import service
from cloud.stores.schemas import ReaderStatusList, StoreList, StoreOut

router = APIRouter(prefix="/v1/stores", tags=["stores"], responses=ERROR_RESPONSES)


@router.get("", response_model=StoreList, summary="List stores")
async def list_stores(state: AppState, principal: StoresReader) -> StoreList:
    """Every store of the site file (that the API key may see), with its coordinates, zones (and their
    roles) and readers.
    """
    return StoreList(stores=[service.store_out(s) for s in state["site"].stores if principal.may_see(s.id)])


@router.get("/{store_id}", response_model=StoreOut, summary="Get one store")
async def get_store(store_id: str, state: AppState, principal: StoresReader) -> StoreOut:
    """One store: coordinates, time zone, GLN, zones with their roles, readers with their antennas."""
    return service.store_out(service.get_store(state["site"], store_id))


@router.get("/{store_id}/readers", response_model=ReaderStatusList, summary="Readers of a store")
async def list_readers(store_id: str, state: AppState, principal: StaffOnly) -> ReaderStatusList:
    """The store's readers (address, model, profile, antenna-to-zone mapping) with the last status each
    reader's agent reported to the ledger: which reader is down, since when.  ``unknown`` when none.
    """
    return await service.reader_statuses(state["ledger"], service.get_store(state["site"], store_id))
