"""What a channel may sell: per store x GTIN, one at a time or in batches."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.auth.deps import AvailabilityReader, require_stores_allowed
from cloud.availability import service
from cloud.availability.schemas import AvailabilityBatch, AvailabilityBatchRequest, AvailabilityOut
from cloud.errors import ERROR_RESPONSES
from cloud.params import parse_gtin, parse_gtins
from cloud.state import AppState
from cloud.stores.service import get_store, require_stores

router = APIRouter(prefix="/v1", tags=["availability"], responses=ERROR_RESPONSES)


@router.get(
    "/stores/{store_id}/availability/{gtin}",
    response_model=AvailabilityOut,
    summary="Availability of one GTIN in one store",
)
async def get_availability(store_id: str, gtin: str, state: AppState, principal: AvailabilityReader) -> AvailabilityOut:
    """On hand (also by zone), unconfirmed, reserved, safety stock, available to sell, confidence and the
    Google availability bucket of one GTIN in one store, as of now.

    The GTIN may be a GTIN-8, -12, -13 or -14; it is answered as GTIN-14.  A GTIN the
    ledger never saw is simply out of stock.
    """
    get_store(state["site"], store_id)
    return await service.availability_one(state, store_id=store_id, gtin=parse_gtin(gtin))


@router.post("/availability:batch", response_model=AvailabilityBatch, summary="Availability in batches")
async def post_availability_batch(
    body: AvailabilityBatchRequest, state: AppState, principal: AvailabilityReader
) -> AvailabilityBatch:
    """Availability of every store x GTIN of the request (at most 100 stores and 100 GTINs).

    Every store must exist and every GTIN must be valid, or the whole request is
    refused (404 ``store_not_found`` naming all unknown stores, 422 ``invalid_gtin``
    naming the first bad GTIN and its index).
    """
    store_ids = list(dict.fromkeys(body.stores))
    require_stores(state["site"], store_ids)
    require_stores_allowed(principal, store_ids)
    gtins = parse_gtins(body.gtins, field="gtins")
    return await service.availability_batch(state, store_ids=store_ids, gtins=gtins)
