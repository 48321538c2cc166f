"""Items, their history, stores and readers through HTTP, against a real ledger."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from gateway.antennas import heartbeat_steps, status_steps
from tagledger.clock import ManualClock
from tagledger.ledger.model import ReaderStatusRecord
from tagledger.ledger.repository import Ledger
from tagledger.wire import Heartbeat, ReaderState, ReaderStatus
from tests.cloud.ledger_data import JEANS, NOW, SHIRT, SHOE, jeans, populate, shirt, shoe


@pytest.fixture(autouse=True)
async def _data(ledger: Ledger, clock: ManualClock) -> None:
    await populate(ledger)
    clock.set(NOW)


async def test_item_shows_its_current_state_and_decoded_product(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/v1/items/{shoe(0).lower()}")  # either case
    assert r.status_code == 200, r.text
    assert r.json() == {
        "epc": shoe(0),
        "epc_uri": "urn:epc:id:sgtin:549755813888.0.0",
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
    assert (paris["latitude"], paris["longitude"], paris["gln"]) == (48.8606, 2.3376, "3012345000017")
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


async def test_an_item_is_found_by_its_pure_identity_urn_too(client: httpx.AsyncClient) -> None:
    by_hex = (await client.get(f"/v1/items/{shoe(0)}")).json()
    r = await client.get(f"/v1/items/{by_hex['epc_uri']}")
    assert r.status_code == 200, r.text
    assert r.json() == by_hex
    history = (await client.get(f"/v1/items/{by_hex['epc_uri']}/history")).json()
    assert history["epc"] == shoe(0)
    assert history["epc_uri"] == by_hex["epc_uri"]
    unknown = await client.get("/v1/items/urn:epc:id:sgtin:0614141.812345.6789")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "item_not_found"
    other = await client.get("/v1/items/urn:epc:id:sscc:0614141.1234567890")
    assert (other.status_code, other.json()["error"]["code"]) == (422, "unsupported_epc_scheme")
    bad = await client.get("/v1/items/urn:epc:id:sgtin:nonsense")
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_epc")


async def test_items_of_a_store_default_to_those_on_hand_and_filter_by_zone_state_and_gtin(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/v1/stores/paris-01/items")
    assert r.status_code == 200, r.text
    body = r.json()
    # The sold shoe is not on hand; everything else of paris-01 is (lyon's shirts are another store).
    assert [i["epc"] for i in body["items"]] == sorted([shirt(0), shirt(1), shirt(2), shirt(3), shoe(1), jeans(0)])
    assert body["next_cursor"] is None
    assert body["items"][0]["product"] == {"name": "Linen shirt", "category": "shirts"}

    async def epcs(**params: object) -> list[str]:
        r = await client.get("/v1/stores/paris-01/items", params=params)
        assert r.status_code == 200, r.text
        return [i["epc"] for i in r.json()["items"]]

    assert await epcs(zone="backroom") == [shirt(3)]
    assert await epcs(zone=["backroom", "exit"]) == sorted([shirt(3), jeans(0)])
    assert await epcs(state="sold") == [shoe(0)]
    assert await epcs(gtin=JEANS) == [jeans(0)]
    assert await epcs(gtin=SHIRT, zone="floor", state="present") == [shirt(1), shirt(2)]


async def test_missing_items_are_those_unobserved_for_longer_than_asked(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    # shirt 0 became unobserved at t+100 s; it is t+200 s now.
    r = await client.get("/v1/stores/paris-01/items", params={"unobserved_for_s": 60})
    assert [i["epc"] for i in r.json()["items"]] == [shirt(0)]
    assert r.json()["items"][0]["since"] == "2026-01-01T00:01:40Z"
    r = await client.get("/v1/stores/paris-01/items", params={"unobserved_for_s": 101})
    assert r.json()["items"] == []


async def test_items_page_with_a_cursor_and_come_whole_as_csv(client: httpx.AsyncClient) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/stores/paris-01/items", params=params)).json()
        seen += [i["epc"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted([shirt(0), shirt(1), shirt(2), shirt(3), shoe(1), jeans(0)])

    r = await client.get("/v1/stores/paris-01/items", params={"limit": 1}, headers={"Accept": "text/csv"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["epc"] for row in table] == seen  # every page, whatever the limit
    first = table[0]
    assert (first["gtin"], first["product"], first["zone"], first["on_hand"]) == (SHIRT, "Linen shirt", "floor", "true")
    assert first["epc_uri"].startswith("urn:epc:id:sgtin:")


async def test_item_listing_refuses_unknown_stores_and_bad_filters(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/stores/nowhere/items")).status_code == 404
    bad_state = await client.get("/v1/stores/paris-01/items", params={"state": "floating"})
    assert bad_state.status_code == 422
    bad_gtin = await client.get("/v1/stores/paris-01/items", params={"gtin": "123"})
    assert bad_gtin.json()["error"]["code"] == "invalid_gtin"
    bad_cursor = await client.get("/v1/stores/paris-01/items", params={"cursor": "nope"})
    assert bad_cursor.json()["error"]["code"] == "invalid_cursor"


async def test_readers_show_each_antennas_read_rate_and_down_flag(client: httpx.AsyncClient, ledger: Ledger) -> None:
    beat = Heartbeat(
        store_id="paris-01", reader_id="paris-01-r1", boot_id="b", at_us=NOW, reader_connected=True,
        reads_per_s={"1": 150.0, "2": 0.0, "3": 20.5},
    )  # fmt: skip
    status = ReaderStatus(
        store_id="paris-01", reader_id="paris-01-r1", state=ReaderState.ONLINE, at_us=NOW - 5, antennas_down=[3]
    )
    await ledger.execute_all([*heartbeat_steps(beat), *status_steps(status, None)])
    await ledger.record_reader_status(
        ReaderStatusRecord(reader_id="paris-01-r1", store_id="paris-01", state="online", at_us=NOW - 5)
    )
    readers = {x["id"]: x for x in (await client.get("/v1/stores/paris-01/readers")).json()["readers"]}
    r1 = readers["paris-01-r1"]
    assert [(a["port"], a["zone"], a["health"], a["reads_per_s"]) for a in r1["antenna_health"]] == [
        (1, "floor", "ok", 150.0),
        (2, "floor", "quiet", 0.0),
        (3, "fitting", "down", 20.5),
    ]
    assert r1["reads_per_s"] == 170.5
    assert r1["last_seen"] == "2026-01-01T00:03:19.999995Z"
    r2 = readers["paris-01-r2"]
    assert (r2["reads_per_s"], r2["last_seen"]) == (None, None)
    assert {a["health"] for a in r2["antenna_health"]} == {"unknown"}
