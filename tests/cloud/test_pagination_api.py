"""Cursor pagination of the lists that grow: stores and a store's stock."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cloud.errors import InvalidParameter
from cloud.pagination import decode_cursor, encode_cursor
from tagledger.clock import ManualClock
from tagledger.ledger.repository import Ledger
from tests.cloud.ledger_data import NOW, populate


@pytest.fixture(autouse=True)
async def _data(ledger: Ledger, clock: ManualClock) -> None:
    await populate(ledger)
    clock.set(NOW)


async def _pages(client: httpx.AsyncClient, url: str, key: str, limit: int) -> list[list[Any]]:
    pages: list[list[Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        r = await client.get(url, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body[key])
        if body["next_cursor"] is None:
            return pages
        params["cursor"] = body["next_cursor"]


async def test_stores_page_by_id(client: httpx.AsyncClient) -> None:
    whole = (await client.get("/v1/stores")).json()
    assert [s["id"] for s in whole["stores"]] == ["lyon-01", "paris-01"]
    assert whole["next_cursor"] is None
    pages = await _pages(client, "/v1/stores", "stores", 1)
    assert [[s["id"] for s in p] for p in pages] == [["lyon-01"], ["paris-01"]]


async def test_stock_pages_concatenate_to_the_whole_list(client: httpx.AsyncClient) -> None:
    whole = (await client.get("/v1/stores/paris-01/stock")).json()
    assert len(whole["entries"]) >= 4
    pages = await _pages(client, "/v1/stores/paris-01/stock", "entries", 2)
    assert len(pages) == (len(whole["entries"]) + 1) // 2
    assert all(len(p) == 2 for p in pages[:-1])
    assert [e for p in pages for e in p] == whole["entries"]
    first = (await client.get("/v1/stores/paris-01/stock", params={"limit": 1})).json()
    assert first["on_hand"] == whole["on_hand"]  # the store's total, whatever the page


@pytest.mark.parametrize("cursor", ["not-base64!", encode_cursor(["a", "b", "c"]), "W10", "x" * 600])
async def test_a_cursor_this_api_did_not_make_is_422(client: httpx.AsyncClient, cursor: str) -> None:
    for url in ("/v1/stores", "/v1/stores/paris-01/stock"):
        r = await client.get(url, params={"cursor": cursor})
        assert r.status_code == 422, (url, r.text)
        assert r.json()["error"]["code"] in {"invalid_cursor", "invalid_request"}


def test_cursors_round_trip() -> None:
    assert decode_cursor(encode_cursor(["00614141000012", "floor"]), parts=2) == ["00614141000012", "floor"]
    with pytest.raises(InvalidParameter):
        decode_cursor(encode_cursor(["x"]), parts=2)
