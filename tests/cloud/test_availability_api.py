"""Availability and stock through HTTP, against the real app and a real ledger."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from tagledger.clock import ManualClock, us_to_datetime
from tagledger.ledger.repository import Ledger
from tests.cloud.ledger_data import BATCH_AT, CHANGES_AT, JEANS, NEVER_SEEN, NOW, SHIRT, SHOE, T0, populate


@pytest.fixture(autouse=True)
async def _data(ledger: Ledger, clock: ManualClock) -> None:
    await populate(ledger)
    clock.set(NOW)


def iso(us: int) -> str:
    return us_to_datetime(us).isoformat()


async def test_availability_equals_what_was_committed(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/v1/stores/paris-01/availability/{SHIRT}")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "store_id": "paris-01",
        "gtin": SHIRT,
        "on_hand": 4,  # 2 present + 1 unobserved on the floor, 1 in the backroom
        "on_hand_by_zone": {"backroom": 1, "floor": 3},
        "unconfirmed": 1,
        "reserved": 0,
        "safety_stock": 0,
        "available_to_sell": 3,
        "confidence": 0.75,
        "availability": "in_stock",
        "as_of": "2026-01-01T00:03:20Z",
    }


async def test_safety_stock_of_the_category_and_exiting_items_leave_the_sellable_quantity(
    client: httpx.AsyncClient,
) -> None:
    shoes = (await client.get(f"/v1/stores/paris-01/availability/{SHOE}")).json()
    assert (shoes["on_hand"], shoes["safety_stock"], shoes["available_to_sell"]) == (1, 1, 0)
    assert shoes["availability"] == "out_of_stock"
    assert shoes["confidence"] == 1.0

    jeans = (await client.get(f"/v1/stores/paris-01/availability/{JEANS}")).json()
    assert jeans["on_hand_by_zone"] == {"exit": 1}
    assert (jeans["on_hand"], jeans["unconfirmed"], jeans["available_to_sell"]) == (1, 1, 0)
    assert jeans["confidence"] == 0.0


async def test_short_gtins_are_padded_and_unknown_ones_are_out_of_stock(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/stores/paris-01/availability/614141000012")  # the shirt's GTIN-12
    assert r.json()["gtin"] == SHIRT
    assert r.json()["on_hand"] == 4
    never = (await client.get(f"/v1/stores/paris-01/availability/{NEVER_SEEN[-8:]}")).json()
    assert never["gtin"] == NEVER_SEEN
    assert (never["on_hand"], never["available_to_sell"], never["confidence"]) == (0, 0, None)
    assert never["availability"] == "out_of_stock"


async def test_batch_covers_every_store_and_gtin_in_request_order(client: httpx.AsyncClient) -> None:
    body = {"stores": ["lyon-01", "paris-01", "lyon-01"], "gtins": [SHIRT, "614141000012", SHOE]}
    r = await client.post("/v1/availability:batch", json=body)
    assert r.status_code == 200, r.text
    got = [(x["store_id"], x["gtin"], x["on_hand"], x["available_to_sell"]) for x in r.json()["results"]]
    assert got == [
        ("lyon-01", SHIRT, 2, 2),
        ("lyon-01", SHOE, 0, 0),
        ("paris-01", SHIRT, 4, 3),
        ("paris-01", SHOE, 1, 0),
    ]
    assert r.json()["as_of"] == "2026-01-01T00:03:20Z"


async def test_batch_agrees_with_single_lookups(client: httpx.AsyncClient) -> None:
    gtins = [SHIRT, SHOE, JEANS, NEVER_SEEN]
    batch = await client.post("/v1/availability:batch", json={"stores": ["paris-01", "lyon-01"], "gtins": gtins})
    for entry in batch.json()["results"]:
        single = (await client.get(f"/v1/stores/{entry['store_id']}/availability/{entry['gtin']}")).json()
        assert single == entry


async def test_current_stock_by_gtin_and_zone(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/stores/paris-01/stock")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["current"] is True
    assert body["as_of"] == "2026-01-01T00:03:20Z"
    cells = {(e["gtin"], e["zone"]): (e["on_hand"], e["by_state"]) for e in body["entries"]}
    assert cells == {
        (SHIRT, "backroom"): (1, {"present": 1}),
        (SHIRT, "floor"): (3, {"present": 2, "unobserved": 1}),
        (SHOE, "floor"): (1, {"present": 1}),
        (SHOE, "pos"): (0, {"sold": 1}),
        (JEANS, "exit"): (1, {"exiting": 1}),
    }
    assert body["on_hand"] == 6


async def test_stock_as_of_a_past_time(client: httpx.AsyncClient) -> None:
    between = iso((BATCH_AT + CHANGES_AT) // 2)
    r = await client.get("/v1/stores/paris-01/stock", params={"as_of": between})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["current"] is False
    cells = {(e["gtin"], e["zone"]): e["by_state"] for e in body["entries"]}
    assert cells == {
        (SHIRT, "backroom"): {"present": 1},
        (SHIRT, "floor"): {"present": 3},
        (SHOE, "floor"): {"present": 2},
        (JEANS, "floor"): {"present": 1},
    }
    before = (await client.get("/v1/stores/paris-01/stock", params={"as_of": iso(T0)})).json()
    assert before["entries"] == []
    assert before["on_hand"] == 0


async def test_stock_as_of_now_equals_current_stock(client: httpx.AsyncClient) -> None:
    current = (await client.get("/v1/stores/paris-01/stock")).json()
    as_of_now = (await client.get("/v1/stores/paris-01/stock", params={"as_of": iso(NOW)})).json()
    assert as_of_now["entries"] == current["entries"]


async def test_stock_filtered_by_gtins_with_an_offset_time(client: httpx.AsyncClient) -> None:
    # The same instant as t+50 s, written in UTC+02:00.
    r = await client.get(
        "/v1/stores/paris-01/stock",
        params=[("as_of", "2026-01-01T02:00:50+02:00"), ("gtin", SHOE), ("gtin", "614141000043")],
    )
    assert r.status_code == 200, r.text
    assert [(e["gtin"], e["zone"], e["on_hand"]) for e in r.json()["entries"]] == [
        (JEANS, "floor", 1),
        (SHOE, "floor", 2),
    ]


async def test_etag_and_cache_control_follow_the_numbers_not_the_clock(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    url = f"/v1/stores/paris-01/availability/{SHIRT}"
    first = await client.get(url)
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, max-age=1"
    clock.advance(5)  # as_of moves, the numbers do not
    again = await client.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.headers["etag"] == tag
    assert again.content == b""
    hold = await client.post(
        "/v1/reservations",
        json={"store_id": "paris-01", "gtin": SHIRT, "quantity": 1},
        headers={"Idempotency-Key": "etag"},
    )
    assert hold.status_code == 201
    changed = await client.get(url, headers={"If-None-Match": f'"other", {tag}'})
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
    assert changed.json()["reserved"] == 1


async def test_the_etag_covers_every_field_but_as_of(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"/v1/stores/paris-01/availability/{SHIRT}")
    numbers = {k: v for k, v in answer.json().items() if k != "as_of"}
    assert len(numbers) == len(answer.json()) - 1
    # The compact JSON of the answer without as_of, in the answer's own field order.
    text = json.dumps(numbers, separators=(",", ":"))
    assert answer.headers["etag"] == '"' + hashlib.blake2b(text.encode(), digest_size=12).hexdigest() + '"'


async def test_stock_of_some_zones_names_products_and_splits_sellable_from_unconfirmed(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/v1/stores/paris-01/stock", params=[("zone", "floor"), ("zone", "exit")])
    assert r.status_code == 200, r.text
    body = r.json()
    cells = {
        (e["gtin"], e["zone"]): (e["product"]["name"], e["on_hand"], e["sellable"], e["unconfirmed"])
        for e in body["entries"]
    }
    assert cells == {
        (SHIRT, "floor"): ("Linen shirt", 3, 2, 1),
        (SHOE, "floor"): ("Running shoe", 1, 1, 0),
        (JEANS, "exit"): ("Denim jeans", 1, 0, 1),
    }
    assert body["on_hand"] == 5  # the backroom shirt is left out with its zone
