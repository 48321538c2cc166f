"""The console's page, files and session answer, and the offline docs, over HTTP (no browser)."""

from __future__ import annotations

import re

import httpx

from cloud.app import create_app
from cloud.auth.scopes import Scope
from cloud.settings import ApiSettings
from tagledger.clock import ManualClock
from tagledger.ledger.repository import Ledger
from tagledger.site import Site
from tests.cloud.harness import api_client
from tests.cloud.test_auth_api import Keys

# Any reference to another host: the console and the docs must load with no network beyond the API.
FOREIGN = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


async def test_the_page_and_its_files_come_from_the_api_itself(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert not FOREIGN.search(page.text)
    for asset in re.findall(r"""(?:src|href)="(/console/static/[^"]+)\"""", page.text):
        r = await client.get(asset)
        assert r.status_code == 200, asset
        assert "http://" not in r.text, asset
        assert "https://" not in r.text, asset
    assert (await client.get("/console/static/nope.js")).status_code == 404


async def test_without_keys_everyone_is_signed_in_to_every_store(client: httpx.AsyncClient) -> None:
    r = await client.get("/console/session")
    assert r.status_code == 200
    body = r.json()
    assert (body["signed_in"], body["auth_required"]) == (True, False)
    assert [s["id"] for s in body["stores"]] == ["paris-01", "lyon-01"]


async def test_with_keys_the_session_names_the_keys_scopes_and_stores(
    ledger_url: str, ledger: Ledger, site: Site, clock: ManualClock
) -> None:
    settings = ApiSettings(database_url=ledger_url, auth_required=True, auth_cache_s=0, hold_sweep_s=0)
    async with api_client(create_app(settings, ledger=ledger, site=site, clock=clock)) as client:
        anonymous = await client.get("/console/session")
        assert anonymous.status_code == 200
        assert (anonymous.json()["signed_in"], anonymous.json()["reason"]) == (False, "unauthorized")
        bad = (await client.get("/console/session", headers={"Authorization": "Bearer tlk_nope_nope"})).json()
        assert (bad["signed_in"], bad["reason"], bad["stores"]) == (False, "invalid_api_key", [])
        token = await Keys(ledger).issue({Scope.STAFF}, ("lyon-01",))
        # An SSO proxy in front may add the key as X-API-Key instead.
        r = await client.get("/console/session", headers={"X-API-Key": token})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["signed_in"], body["auth_required"], body["scopes"]) == (True, True, ["staff"])
        assert body["key_id"]
        assert body["key_id"] in token
        assert [s["id"] for s in body["stores"]] == ["lyon-01"]
        assert (await client.get("/")).status_code == 200  # the page itself holds no data


async def test_docs_and_redoc_load_their_scripts_from_the_api(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        r = await client.get(page)
        assert r.status_code == 200, page
        assert not FOREIGN.search(r.text), page
        for asset in re.findall(r"""(?:src|href)=['"](/[^'"]+\.(?:js|css|png))""", r.text):
            got = await client.get(asset)
            assert got.status_code == 200, asset
            assert len(got.content) > 1000, asset
