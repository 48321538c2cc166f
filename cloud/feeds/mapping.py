"""Channel feed records from availability numbers.  No I/O.

Each function maps one :class:`~cloud.availability.schemas.AvailabilityOut` onto
the vocabulary of one channel, so every feed is the same numbers as
``GET /v1/stores/{store_id}/availability/{gtin}`` under other names:

* Google local inventory: ``quantity`` is ``available_to_sell`` and
  ``availability`` its bucket (>= 3 ``in_stock``, 1-2 ``limited_availability``,
  0 ``out_of_stock``); ``id`` is the GTIN-14 (the feed's item id must match the
  product feed's, which this API cannot know, so the GTIN is the contract).
* Salesforce Omnichannel Inventory: OCI derives ``atf`` as
  ``onHand - reserved - safetyStockCount``.  ``onHand`` is therefore the
  *confirmed* on-hand (``on_hand - unconfirmed``): units not vouched for by
  recent reads must not become sellable in OCI either, so OCI's atf equals our
  ``available_to_sell`` (both floor at 0).
* Shopify ``inventorySetQuantities``: the ``available`` quantity is set to
  ``available_to_sell``; ``compareQuantity`` is what the caller read from
  Shopify, so Shopify refuses the set if the quantity moved in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cloud.availability.schemas import AvailabilityOut

#: Shopify accepts at most 250 quantities per ``inventorySetQuantities`` call.
SHOPIFY_MAX_QUANTITIES = 250

GOOGLE_FIELDS = ("store_code", "id", "quantity", "availability", "pickup_method", "pickup_SLA")
OCI_FIELDS = ("locationId", "sku", "onHand", "reserved", "safetyStockCount", "effectiveDate")
SHOPIFY_INPUT_FIELDS = ("name", "reason", "referenceDocumentUri", "quantities")
SHOPIFY_QUANTITY_FIELDS = ("inventoryItemId", "locationId", "quantity", "compareQuantity")


def rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def google_entry(a: AvailabilityOut, *, pickup_method: str, pickup_sla: str) -> dict[str, Any]:
    return {
        "store_code": a.store_id,
        "id": a.gtin,
        "quantity": a.available_to_sell,
        "availability": a.availability.value,
        "pickup_method": pickup_method,
        "pickup_SLA": pickup_sla,
    }


def oci_record(a: AvailabilityOut) -> dict[str, Any]:
    return {
        "locationId": a.store_id,
        "sku": a.gtin,
        "onHand": a.on_hand - a.unconfirmed,
        "reserved": a.reserved,
        "safetyStockCount": a.safety_stock,
        "effectiveDate": rfc3339(a.as_of),
    }


def shopify_inputs(
    pairs: Sequence[tuple[AvailabilityOut, str, int]], *, location_id: str, reference: str
) -> list[dict[str, Any]]:
    """``inventorySetQuantities`` inputs, at most 250 quantities each.

    ``pairs``: (availability, Shopify inventory item id, compare quantity), in the
    caller's order.
    """
    quantities = [
        {"inventoryItemId": item_id, "locationId": location_id, "quantity": a.available_to_sell, "compareQuantity": cq}
        for a, item_id, cq in pairs
    ]
    return [
        {
            "name": "available",
            "reason": "correction",
            "referenceDocumentUri": reference,
            "quantities": quantities[start : start + SHOPIFY_MAX_QUANTITIES],
        }
        for start in range(0, len(quantities), SHOPIFY_MAX_QUANTITIES)
    ]
