"""The auditor routes with real API keys: a key limited to some stores sees and changes only those."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from cloud.app import create_app
from cloud.auth.scopes import Scope
from cloud.settings import ApiSettings
from tagledger.clock import ManualClock, us_to_datetime
from tagledger.ledger.repository import Ledger
from tagledger.site import Site
from tests.cloud.harness import api_client
from tests.cloud.ledger_data import NOW, SHIRT, T0, populate
from tests.cloud.test_auth_api import Keys


@pytest.fixture
async def keyed(
    ledger_url: str, ledger: Ledger, site: Site, clock: ManualClock
) -> AsyncIterator[tuple[httpx.AsyncClient, Keys]]:
    await populate(ledger)
    clock.set(NOW)
    settings = ApiSettings(database_url=ledger_url, auth_required=True, auth_cache_s=0, hold_sweep_s=0)
    async with api_client(create_app(settings, ledger=ledger, site=site, clock=clock)) as client:
        yield client, Keys(ledger)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_store_limited_key_lists_its_own_counts_and_imports_past_newer_ones_of_other_stores(
    keyed: tuple[httpx.AsyncClient, Keys], clock: ManualClock
) -> None:
    client, keys = keyed
    every = bearer(await keys.issue({Scope.AUDIT}))
    lyon = bearer(await keys.issue({Scope.AUDIT}, ("lyon-01",)))
    as_of = us_to_datetime(T0).isoformat()
    opened = []
    for store in ("lyon-01", "paris-01", "paris-01"):  # Lyon's is the oldest
        clock.advance(1)
        r = await client.post("/v1/audit/counts", json={"store_id": store}, headers=every)
        assert r.status_code == 201, r.text
        opened.append(r.json()["id"])
        book = f"store,gtin,quantity,as_of\n{store},{SHIRT},1,{as_of}\n"
        clock.advance(1)
        r = await client.post(
            "/v1/audit/book-imports", content=book.encode(), headers={**every, "Content-Type": "text/csv"}
        )
        assert r.status_code == 201, r.text
        as_of = us_to_datetime(T0 + len(opened)).isoformat()  # newer as-of for the next store
    counts = (await client.get("/v1/audit/counts", params={"limit": 1}, headers=lyon)).json()["counts"]
    assert [c["id"] for c in counts] == [opened[0]]
    imports = (await client.get("/v1/audit/book-imports", params={"limit": 1}, headers=lyon)).json()["imports"]
    assert [i["store_id"] for i in imports] == ["lyon-01"]
    everything = (await client.get("/v1/audit/counts", headers=every)).json()["counts"]
    assert [c["id"] for c in everything] == opened[::-1]
    # and nothing of Paris through its ids
    paris_count = opened[1]
    assert (await client.get(f"/v1/audit/counts/{paris_count}", headers=lyon)).status_code == 403
    assert (await client.post(f"/v1/audit/counts/{paris_count}/close", headers=lyon)).status_code == 403
    paris_import = (await client.get("/v1/audit/book-imports", params={"store_id": "paris-01"}, headers=every)).json()
    pid = paris_import["imports"][0]["id"]
    assert (await client.get(f"/v1/audit/book-imports/{pid}/differences", headers=lyon)).status_code == 403
    assert (await client.post(f"/v1/audit/book-imports/{pid}/approvals", json={}, headers=lyon)).status_code == 403
    r = await client.get(
        "/v1/audit/stores/paris-01/epcis",
        params={"from": us_to_datetime(T0).isoformat(), "to": us_to_datetime(NOW).isoformat()},
        headers=lyon,
    )
    assert r.status_code == 403
