"""Channel feeds: each carries exactly its documented fields, with the availability endpoint's numbers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from cloud.feeds.mapping import GOOGLE_FIELDS, OCI_FIELDS, SHOPIFY_INPUT_FIELDS, SHOPIFY_QUANTITY_FIELDS
from tagledger.clock import ManualClock
from tagledger.ledger.repository import Ledger
from tests.cloud.harness import two_store_site
from tests.cloud.ledger_data import JEANS, NOW, SHIRT, SHOE, populate

FEEDS = "/v1/stores/paris-01/feeds"
SITE_GTINS = {p.gtin for p in two_store_site().products}


@pytest.fixture(autouse=True)
async def _data(ledger: Ledger, clock: ManualClock, client: httpx.AsyncClient) -> None:
    await populate(ledger)
    clock.set(NOW)
    # One reserved shirt, so "reserved" is not trivially 0 in the feeds.
    r = await client.post(
        "/v1/reservations",
        json={"store_id": "paris-01", "gtin": SHIRT, "quantity": 1},
        headers={"Idempotency-Key": "feeds"},
    )
    assert r.status_code == 201, r.text


async def _availability(client: httpx.AsyncClient, gtin: str) -> dict[str, Any]:
    r = await client.get(f"/v1/stores/paris-01/availability/{gtin}")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


async def test_google_local_inventory_has_exactly_its_fields_and_the_availability_numbers(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get(f"{FEEDS}/google-local-inventory")
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    assert {e["id"] for e in entries} == SITE_GTINS  # every product, the ones at 0 too
    for e in entries:
        assert tuple(e) == GOOGLE_FIELDS
        a = await _availability(client, e["id"])
        assert e == {
            "store_code": "paris-01",
            "id": a["gtin"],
            "quantity": a["available_to_sell"],
            "availability": a["availability"],
            "pickup_method": "buy",
            "pickup_SLA": "same day",
        }
    by_id = {e["id"]: e for e in entries}
    # 4 on hand - 1 unconfirmed - 1 reserved: the hold shows in the feed.
    assert (by_id[SHIRT]["quantity"], by_id[SHIRT]["availability"]) == (2, "limited_availability")
    assert by_id[SHOE]["availability"] == "out_of_stock"


async def test_salesforce_oci_ndjson_has_exactly_its_fields_and_atf_is_available_to_sell(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get(f"{FEEDS}/salesforce-oci", params={"gtin": [SHIRT, SHOE, JEANS]})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert r.text.endswith("\n")
    records = [json.loads(line) for line in r.text.splitlines()]
    assert [rec["sku"] for rec in records] == [SHIRT, SHOE, JEANS]
    for rec in records:
        assert tuple(rec) == OCI_FIELDS
        a = await _availability(client, rec["sku"])
        assert rec == {
            "locationId": "paris-01",
            "sku": a["gtin"],
            "onHand": a["on_hand"] - a["unconfirmed"],
            "reserved": a["reserved"],
            "safetyStockCount": a["safety_stock"],
            "effectiveDate": "2026-01-01T00:03:20Z",
        }
        atf = max(0, rec["onHand"] - rec["reserved"] - rec["safetyStockCount"])
        assert atf == a["available_to_sell"]
    assert records[0]["reserved"] == 1


async def test_shopify_payloads_have_exactly_their_fields_in_batches_of_250(client: httpx.AsyncClient) -> None:
    # 600 items (the shirt again and again, as if 600 variants shared it): 250 + 250 + 100.
    items = [
        {
            "gtin": SHIRT if n % 2 else SHOE,
            "inventory_item_id": f"gid://shopify/InventoryItem/{n}",
            "compare_quantity": n,
        }
        for n in range(600)
    ]
    r = await client.post(
        f"{FEEDS}/shopify-inventory-set-quantities",
        json={"location_id": "gid://shopify/Location/7", "items": items},
    )
    assert r.status_code == 200, r.text
    inputs = r.json()["inputs"]
    assert [len(i["quantities"]) for i in inputs] == [250, 250, 100]
    shirt, shoe = await _availability(client, SHIRT), await _availability(client, SHOE)
    n = 0
    for payload in inputs:
        assert tuple(payload) == SHOPIFY_INPUT_FIELDS
        assert (payload["name"], payload["reason"]) == ("available", "correction")
        assert payload["referenceDocumentUri"].startswith("tagledger://stores/paris-01/")
        for q in payload["quantities"]:
            assert tuple(q) == SHOPIFY_QUANTITY_FIELDS
            a = shirt if n % 2 else shoe
            assert q == {
                "inventoryItemId": f"gid://shopify/InventoryItem/{n}",
                "locationId": "gid://shopify/Location/7",
                "quantity": a["available_to_sell"],
                "compareQuantity": n,
            }
            n += 1
    assert n == 600


async def test_feeds_refuse_bad_input_with_a_4xx_body(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/stores/nowhere/feeds/google-local-inventory")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "store_not_found")
    r = await client.get(f"{FEEDS}/salesforce-oci", params={"gtin": "123"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_gtin")
    r = await client.post(
        f"{FEEDS}/shopify-inventory-set-quantities",
        json={"location_id": "L", "items": [{"gtin": "1", "inventory_item_id": "I", "compare_quantity": 0}]},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_gtin")
    assert r.json()["error"]["details"]["index"] == 0
    r = await client.post(f"{FEEDS}/shopify-inventory-set-quantities", json={"location_id": "L", "items": []})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request")
