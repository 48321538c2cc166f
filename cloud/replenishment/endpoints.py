"""A store's replenishment list: what to bring from the backroom to the floor."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.auth.deps import StockReader
from cloud.errors import ERROR_RESPONSES
from cloud.items.schemas import ProductOut
from cloud.replenishment.rules import needs
from cloud.replenishment.schemas import NeedOut, ReplenishmentOut
from cloud.state import AppState
from cloud.stores.service import get_store

router = APIRouter(prefix="/v1/stores", tags=["stock"], responses=ERROR_RESPONSES)


@router.get("/{store_id}/replenishment", response_model=ReplenishmentOut, summary="Replenishment list of a store")
async def get_replenishment(store_id: str, state: AppState, principal: StockReader) -> ReplenishmentOut:
    """GTINs whose units on the sales floor are below their floor target (site file: ``floor_target``
    of the product, else ``replenishment.categories`` of its category, else
    ``replenishment.default_floor_target``), with the units in the backroom and how many to bring.
    """
    site = state["site"]
    store = get_store(site, store_id)
    rows = await state["ledger"].stock(store_id)
    out = []
    for n in needs(rows, store, site.floor_target):
        out.append(
            NeedOut(
                gtin=n.gtin,
                product=ProductOut.of(site, n.gtin),
                floor_target=n.floor_target,
                on_floor=n.on_floor,
                in_backroom=n.in_backroom,
                to_bring=n.to_bring,
            )
        )
    return ReplenishmentOut(store_id=store_id, needs=out)
