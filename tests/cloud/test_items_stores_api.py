"""Items, their history, stores and readers through HTTP, against a real ledger."""

from __future__ import annotations

import httpx
import pytest

from tagledger.clock import ManualClock
from tagledger.ledger.model import ReaderStatusRecord
from tagledger.ledger.repository import Ledger
from tests.cloud.ledger_data import NOW, SHOE, populate, shirt, shoe


@pytest.fixture(autouse=True)
async def _data(ledger: Ledger, clock: ManualClock) -> None:
    await populate(ledger)
    clock.set(NOW)


async def test_item_shows_its_current_state_and_decoded_product(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/v1/items/{shoe(0).lower()}")  # either case
    assert r.status_code == 200, r.text
    assert r.json() == {
        "epc": shoe(0),
        "store_id": "paris-01",
        "scheme": "sgtin-96",
        "gtin": SHOE,
        "serial": "0",
        "product": {"name": "Running shoe", "category": "shoes"},
        "state": "sold",
        "zone": "pos",
        "on_hand": False,
        "since": "2026-01-01T00:01:40Z",
        "confidence": 0.5,
    }


async def test_history_pages_backwards_with_a_cursor(client: httpx.AsyncClient) -> None:
    first = await client.get(f"/v1/items/{shoe(0)}/history", params={"limit": 1})
    assert first.status_code == 200, first.text
    page1 = first.json()
    assert [e["to_state"] for e in page1["events"]] == ["sold"]
    assert page1["events"][0]["reason"] == "pos_transaction"
    assert page1["events"][0]["from_zone"] == "floor"
    assert page1["events"][0]["batch"] is None
    assert page1["next_cursor"]

    second = await client.get(f"/v1/items/{shoe(0)}/history", params={"limit": 1, "cursor": page1["next_cursor"]})
    page2 = second.json()
    assert len(page2["events"]) == 1
    arrival = page2["events"][0]
    assert arrival["to_state"] == "present"
    assert arrival["from_state"] is None
    assert arrival["batch"] == {"reader_id": "paris-01-r1", "boot_id": "boot-a", "seq": 1}
    assert arrival["reader_id"] == "paris-01-r1"
    assert arrival["antenna"] == 1
    assert arrival["at"] == "2026-01-01T00:00:10Z"
    assert arrival["id"] < page1["events"][0]["id"]
    assert page2["next_cursor"] is None

    whole = (await client.get(f"/v1/items/{shoe(0)}/history")).json()
    assert [e["id"] for e in whole["events"]] == [page1["events"][0]["id"], arrival["id"]]
    assert whole["next_cursor"] is None


async def test_history_of_an_item_with_one_event(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"/v1/items/{shirt(2)}/history", params={"limit": 1})).json()
    assert len(body["events"]) == 1
    assert body["next_cursor"] is None  # exactly one page: no cursor to an empty one


async def test_store_list_carries_coordinates_zones_and_readers(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/stores")
    assert r.status_code == 200
    stores = {s["id"]: s for s in r.json()["stores"]}
    assert set(stores) == {"paris-01", "lyon-01"}
    paris = stores["paris-01"]
    assert (paris["latitude"], paris["longitude"], paris["gln"]) == (48.8606, 2.3376, "3012345000019")
    assert {z["id"]: z["role"] for z in paris["zones"]}["pos"] == "pos"
    assert {z["id"]: z["mobility"] for z in paris["zones"]}["floor"] == "stationary"
    assert [r["id"] for r in paris["readers"]] == ["paris-01-r1", "paris-01-r2", "paris-01-r3", "paris-01-r4"]
    one = (await client.get("/v1/stores/lyon-01")).json()
    assert one == stores["lyon-01"]


async def test_readers_show_the_last_reported_status(client: httpx.AsyncClient, ledger: Ledger) -> None:
    await ledger.record_reader_status(
        ReaderStatusRecord(reader_id="paris-01-r2", store_id="paris-01", state="offline", at_us=NOW, detail="no LLRP")
    )
    r = await client.get("/v1/stores/paris-01/readers")
    assert r.status_code == 200, r.text
    readers = {x["id"]: x for x in r.json()["readers"]}
    assert readers["paris-01-r2"]["status"] == "offline"
    assert readers["paris-01-r2"]["status_detail"] == "no LLRP"
    assert readers["paris-01-r2"]["status_at"] == "2026-01-01T00:03:20Z"
    assert readers["paris-01-r1"]["status"] == "unknown"
    assert readers["paris-01-r1"]["status_at"] is None
    assert readers["paris-01-r1"]["antennas"] == [
        {"port": 1, "zone": "floor"},
        {"port": 2, "zone": "floor"},
        {"port": 3, "zone": "fitting"},
    ]
