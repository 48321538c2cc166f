"""Reservations through HTTP on the real SQLite and PostgreSQL ledgers: grant, replay, refuse,
expire, confirm, consume by a recorded sale, release; ``reserved`` in availability follows."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cloud.reservations import repository
from tagledger.clock import ManualClock
from tagledger.ledger.model import ItemState, Transition
from tagledger.ledger.repository import Ledger
from tests.cloud.ledger_data import NOW, SHIRT, SHOE, populate, shirt

AVAIL = f"/v1/stores/paris-01/availability/{SHIRT}"  # 3 confirmed shirts, no safety stock


@pytest.fixture(autouse=True)
async def _data(ledger: Ledger, clock: ManualClock) -> None:
    await populate(ledger)
    clock.set(NOW)


async def hold(client: httpx.AsyncClient, key: str, quantity: int = 1, **extra: Any) -> httpx.Response:
    body = {"store_id": "paris-01", "gtin": SHIRT, "quantity": quantity, **extra}
    return await client.post("/v1/reservations", json=body, headers={"Idempotency-Key": key})


async def available(client: httpx.AsyncClient) -> tuple[int, int]:
    a = (await client.get(AVAIL)).json()
    return a["reserved"], a["available_to_sell"]


async def test_a_hold_reserves_and_a_replay_returns_the_same_hold(client: httpx.AsyncClient) -> None:
    r = await hold(client, "cart-1", 2, ttl_s=600)
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["state"], made["quantity"], made["picked"], made["gtin"]) == ("held", 2, 0, SHIRT)
    assert made["expires_at"] == "2026-01-01T00:13:20Z"  # NOW + 600 s
    assert await available(client) == (2, 1)

    again = await hold(client, "cart-1", 2, ttl_s=600)
    assert again.status_code == 200
    assert again.json()["id"] == made["id"]
    assert await available(client) == (2, 1)  # not reserved twice

    reused = await hold(client, "cart-1", 1)
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert reused.json()["error"]["details"] == {"reservation_id": made["id"]}


async def test_more_than_available_is_409_with_what_is_available(client: httpx.AsyncClient) -> None:
    assert (await hold(client, "a", 2)).status_code == 201
    r = await hold(client, "b", 2)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "insufficient_stock"
    assert r.json()["error"]["details"] == {"available": 1, "requested": 2, "store_id": "paris-01", "gtin": SHIRT}
    assert (await hold(client, "c", 1)).status_code == 201
    assert (await hold(client, "d", 1)).json()["error"]["details"]["available"] == 0


async def test_safety_stock_is_not_reservable(client: httpx.AsyncClient) -> None:
    # One shoe on hand, shoes have a safety stock of 1 in these tests.
    r = await client.post(
        "/v1/reservations",
        json={"store_id": "paris-01", "gtin": SHOE, "quantity": 1},
        headers={"Idempotency-Key": "s"},
    )
    assert r.status_code == 409
    assert r.json()["error"]["details"]["available"] == 0


async def test_a_hold_stops_counting_at_its_deadline(client: httpx.AsyncClient, clock: ManualClock) -> None:
    made = (await hold(client, "k", 3, ttl_s=60)).json()
    assert await available(client) == (3, 0)
    clock.advance(60)
    assert await available(client) == (0, 3)
    got = (await client.get(f"/v1/reservations/{made['id']}")).json()
    assert got["state"] == "expired"
    r = await client.post(f"/v1/reservations/{made['id']}/confirm")
    assert r.status_code == 409
    assert r.json()["error"]["details"] == {"reservation_id": made["id"], "state": "expired"}
    assert (await hold(client, "k2", 3)).status_code == 201  # the units are free again


async def test_a_confirmed_hold_is_consumed_by_the_recorded_sale(
    client: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    made = (await hold(client, "order-1", 2, ttl_s=60)).json()
    r = await client.post(f"/v1/reservations/{made['id']}/confirm", json={"ttl_s": 3600})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "confirmed"
    assert r.json()["expires_at"] == "2026-01-01T01:03:20Z"
    assert (await client.post(f"/v1/reservations/{made['id']}/confirm")).json()["state"] == "confirmed"  # twice: ok
    clock.advance(120)  # past the cart TTL: a confirmed hold keeps its own deadline
    assert await available(client) == (2, 1)

    # Staff pick one shirt and the till records its sale: on hand -1, reserved -1, sellable unchanged.
    await ledger.commit_transitions([sale(shirt(1), clock.now_us())])
    await repository.sweep_holds(ledger, now_us=clock.now_us())
    assert await available(client) == (1, 1)
    assert (await client.get(f"/v1/reservations/{made['id']}")).json()["picked"] == 1

    await ledger.commit_transitions([sale(shirt(2), clock.now_us())])
    await repository.sweep_holds(ledger, now_us=clock.now_us())
    done = (await client.get(f"/v1/reservations/{made['id']}")).json()
    assert (done["state"], done["picked"]) == ("consumed", 2)
    assert await available(client) == (0, 1)  # left: the backroom shirt (sellable), the unobserved one (not)
    assert (await client.post(f"/v1/reservations/{made['id']}/release")).status_code == 409


async def test_a_sale_before_the_confirmation_is_not_the_holds(client: httpx.AsyncClient, ledger: Ledger) -> None:
    made = (await hold(client, "x", 1)).json()
    await ledger.commit_transitions([sale(shirt(1), NOW)])  # a walk-in shopper, before the order
    await client.post(f"/v1/reservations/{made['id']}/confirm")
    await repository.sweep_holds(ledger, now_us=NOW)
    assert (await client.get(f"/v1/reservations/{made['id']}")).json()["picked"] == 0


async def test_release_gives_the_units_back_and_is_idempotent(client: httpx.AsyncClient) -> None:
    made = (await hold(client, "r", 3)).json()
    for _ in range(2):
        r = await client.post(f"/v1/reservations/{made['id']}/release")
        assert r.status_code == 200
        assert r.json()["state"] == "released"
    assert await available(client) == (0, 3)


async def test_sweep_marks_lapsed_holds_expired(client: httpx.AsyncClient, ledger: Ledger) -> None:
    made = (await hold(client, "e", 1, ttl_s=5)).json()
    assert await repository.reserved(ledger, ["paris-01", "lyon-01"], [SHIRT], now_us=NOW) == {("paris-01", SHIRT): 1}
    assert await repository.sweep_holds(ledger, now_us=NOW + 5_000_000) == 1
    stored = await repository.get_hold(ledger, made["id"])
    assert stored is not None
    assert stored.state == "expired"


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ({"store_id": "paris-01", "gtin": SHIRT, "quantity": 1}, {}, 422, "idempotency_key_required"),
        ({"store_id": "paris-01", "gtin": SHIRT, "quantity": 1}, {"Idempotency-Key": "x" * 201}, 422, None),
        ({"store_id": "nope", "gtin": SHIRT, "quantity": 1}, {"Idempotency-Key": "k"}, 404, "store_not_found"),
        ({"store_id": "paris-01", "gtin": "123", "quantity": 1}, {"Idempotency-Key": "k"}, 422, "invalid_gtin"),
        ({"store_id": "paris-01", "gtin": SHIRT, "quantity": 0}, {"Idempotency-Key": "k"}, 422, "invalid_request"),
        ({"store_id": "paris-01", "gtin": SHIRT, "quantity": 101}, {"Idempotency-Key": "k"}, 422, "invalid_request"),
        (
            {"store_id": "paris-01", "gtin": SHIRT, "quantity": 1, "ttl_s": 10**9},
            {"Idempotency-Key": "k"},
            422,
            "ttl_too_long",
        ),
        ({"store_id": "paris-01", "gtin": SHIRT}, {"Idempotency-Key": "k"}, 422, "invalid_request"),
    ],
)
async def test_bad_requests_are_4xx_with_a_body(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str], status: int, code: str | None
) -> None:
    r = await client.post("/v1/reservations", json=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == (code or "invalid_idempotency_key")


async def test_unknown_reservations_are_404(client: httpx.AsyncClient) -> None:
    for r in (
        await client.get("/v1/reservations/nope"),
        await client.post("/v1/reservations/nope/confirm"),
        await client.post("/v1/reservations/nope/release"),
    ):
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "reservation_not_found"


def sale(epc: str, at_us: int) -> Transition:
    return Transition(
        store_id="paris-01",
        epc=epc,
        gtin=SHIRT,
        serial=str(int(epc[-8:], 16)),
        scheme="sgtin-96",
        at_us=at_us,
        from_state=ItemState.PRESENT,
        to_state=ItemState.SOLD,
        from_zone="floor",
        to_zone="pos",
        confidence=1.0,
        reason="pos_transaction",
    )
