"""Channel feeds of a store: Google local inventory, Salesforce OCI NDJSON, Shopify payloads.

Every feed is computed by the availability service, so a feed's numbers are the
availability endpoint's numbers under the channel's names (see
:mod:`cloud.feeds.mapping`).
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Response

from cloud.auth.deps import AvailabilityReader
from cloud.errors import ERROR_RESPONSES
from cloud.feeds import mapping, service
from cloud.feeds.schemas import GoogleLocalInventoryFeed, ShopifyPayloads, ShopifyRequest
from cloud.params import parse_gtin, parse_gtins
from cloud.state import AppState
from cloud.stores.service import get_store

router = APIRouter(prefix="/v1/stores/{store_id}/feeds", tags=["feeds"], responses=ERROR_RESPONSES)

GtinFilter = Annotated[
    list[str] | None,
    Query(max_length=100, description="Only these GTINs (repeat; at most 100). Default: every GTIN of the store."),
]


async def _gtins(state: AppState, store_id: str, gtin: list[str] | None) -> list[str]:
    get_store(state["site"], store_id)
    if gtin is not None:
        return parse_gtins(gtin, field="gtin")
    return await service.store_gtins(state, store_id)


@router.get("/google-local-inventory", response_model=GoogleLocalInventoryFeed, summary="Google local inventory feed")
async def google_local_inventory(
    store_id: str, state: AppState, principal: AvailabilityReader, gtin: GtinFilter = None
) -> Response:
    """One entry per GTIN of the store with exactly the fields `store_code`, `id` (GTIN-14), `quantity`
    (available_to_sell), `availability` (in_stock / limited_availability / out_of_stock),
    `pickup_method` and `pickup_SLA` (both from the API settings).  Every GTIN of the site file is
    listed, at 0 when none is left.
    """
    gtins = await _gtins(state, store_id, gtin)
    settings = state["settings"]
    entries = [
        mapping.google_entry(a, pickup_method=settings.feed_pickup_method, pickup_sla=settings.feed_pickup_sla)
        for a in await service.availabilities(state, store_id, gtins)
    ]
    return Response(json.dumps({"entries": entries}), media_type="application/json")


@router.get(
    "/salesforce-oci",
    summary="Salesforce Omnichannel Inventory export (NDJSON)",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "One JSON object per line."}},
)
async def salesforce_oci(
    store_id: str, state: AppState, principal: AvailabilityReader, gtin: GtinFilter = None
) -> Response:
    """Newline-delimited JSON, one line per GTIN with exactly `locationId` (store id), `sku` (GTIN-14),
    `onHand` (on hand confirmed by recent reads: on_hand - unconfirmed), `reserved`,
    `safetyStockCount` and `effectiveDate` (the availability's as_of, RFC 3339 UTC).  OCI's
    `atf = onHand - reserved - safetyStockCount` is then our available_to_sell.
    """
    gtins = await _gtins(state, store_id, gtin)
    lines = [json.dumps(mapping.oci_record(a)) + "\n" for a in await service.availabilities(state, store_id, gtins)]
    return Response("".join(lines), media_type="application/x-ndjson")


@router.post(
    "/shopify-inventory-set-quantities",
    response_model=ShopifyPayloads,
    summary="Shopify inventorySetQuantities payloads",
)
async def shopify_set_quantities(
    store_id: str, body: ShopifyRequest, state: AppState, principal: AvailabilityReader
) -> Response:
    """Inputs for Shopify's `inventorySetQuantities` mutation setting the `available` quantity of each
    given item at the store's location to available_to_sell, each with the caller's
    `compareQuantity` (what Shopify showed when the caller read it), in batches of at most 250
    quantities.  The caller maps GTINs to Shopify inventory items (this API does not know Shopify's
    ids); items keep the request's order.
    """
    get_store(state["site"], store_id)
    gtins = [parse_gtin(i.gtin, where={"field": "items", "index": n}) for n, i in enumerate(body.items)]
    unique = list(dict.fromkeys(gtins))
    by_gtin = {a.gtin: a for a in await service.availabilities(state, store_id, unique)}
    pairs = [(by_gtin[g], i.inventory_item_id, i.compare_quantity) for g, i in zip(gtins, body.items, strict=True)]
    as_of = min((a.as_of for a in by_gtin.values()), default=None)
    reference = f"tagledger://stores/{store_id}/availability" + (f"?as_of={mapping.rfc3339(as_of)}" if as_of else "")
    inputs = mapping.shopify_inputs(pairs, location_id=body.location_id, reference=reference)
    return Response(json.dumps({"inputs": inputs}), media_type="application/json")
