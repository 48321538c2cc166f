"""A store's events feed through HTTP, against a real ledger (both backends)."""

from __future__ import annotations

import httpx
import pytest

from tagledger.clock import ManualClock
from tagledger.ledger.repository import Ledger
from tests.cloud.ledger_data import JEANS, NOW, SHOE, jeans, populate, shirt, shoe

KINDS = ("sale", "exit", "return", "arrival", "move", "unobserved", "seen")


@pytest.fixture(autouse=True)
async def _data(ledger: Ledger, clock: ManualClock) -> None:
    await populate(ledger)
    clock.set(NOW)


async def test_the_feed_is_newest_first_with_kinds_items_and_products(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/stores/paris-01/events")
    assert r.status_code == 200, r.text
    events = r.json()["events"]
    assert len(events) == 10  # 7 arrivals, then 3 changes; lyon's are another store's
    newest = events[:3]
    assert {(e["kind"], e["epc"]) for e in newest} == {
        ("unobserved", shirt(0)),
        ("sale", shoe(0)),
        ("exit", jeans(0)),
    }
    assert all(e["kind"] == "arrival" for e in events[3:])
    sale = next(e for e in events if e["kind"] == "sale")
    assert (sale["gtin"], sale["product"]["name"], sale["from_zone"], sale["to_zone"]) == (
        SHOE,
        "Running shoe",
        "floor",
        "pos",
    )
    assert sale["epc_uri"].startswith("urn:epc:id:sgtin:")
    exit_ = next(e for e in events if e["kind"] == "exit")
    assert (exit_["gtin"], exit_["to_state"]) == (JEANS, "exiting")
    ats = [(e["at"], e["id"]) for e in events]
    assert ats == sorted(ats, reverse=True)


async def test_each_kind_filter_keeps_exactly_the_events_of_that_kind(client: httpx.AsyncClient) -> None:
    everything = (await client.get("/v1/stores/paris-01/events", params={"limit": 500})).json()["events"]
    union: list[int] = []
    for kind in KINDS:
        got = (await client.get("/v1/stores/paris-01/events", params={"kind": kind})).json()["events"]
        assert {e["kind"] for e in got} <= {kind}
        union += [e["id"] for e in got]
    assert sorted(union) == sorted(e["id"] for e in everything)
    both = (await client.get("/v1/stores/paris-01/events", params=[("kind", "sale"), ("kind", "exit")])).json()
    assert sorted(e["kind"] for e in both["events"]) == ["exit", "sale"]


async def test_the_feed_pages_backwards_with_its_cursor(client: httpx.AsyncClient) -> None:
    whole = [e["id"] for e in (await client.get("/v1/stores/paris-01/events")).json()["events"]]
    seen: list[int] = []
    params: dict[str, object] = {"limit": 3}
    while True:
        page = (await client.get("/v1/stores/paris-01/events", params=params)).json()
        seen += [e["id"] for e in page["events"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == whole
    bad = await client.get("/v1/stores/paris-01/events", params={"cursor": "WyJ4IiwiMSJd"})  # ["x","1"]
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_cursor")
    assert (await client.get("/v1/stores/paris-01/events", params={"kind": "teleport"})).status_code == 422
    assert (await client.get("/v1/stores/nowhere/events")).status_code == 404
