"""Health, readiness, metrics, OpenAPI and CORS of the real app."""

from __future__ import annotations

import httpx

from cloud.app import create_app
from cloud.settings import ApiSettings
from tagledger.clock import ManualClock
from tagledger.ledger.repository import Ledger
from tagledger.site import Site
from tests.cloud.harness import api_client
from tests.cloud.ledger_data import SHIRT, populate


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_is_503_when_the_ledger_is_gone(
    settings: ApiSettings, ledger: Ledger, site: Site, clock: ManualClock
) -> None:
    app = create_app(settings, ledger=ledger, site=site, clock=clock)
    async with api_client(app) as client:
        await ledger.close()
        r = await client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "ledger_unavailable"
        assert (await client.get("/healthz")).status_code == 200  # liveness does not depend on the ledger


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await client.get(f"/v1/stores/paris-01/availability/{SHIRT}")).status_code == 200
    assert (await client.get("/v1/stores/nope")).status_code == 404
    assert (await client.get("/no/such/path")).status_code == 404
    text = (await client.get("/metrics")).text
    route = "/v1/stores/{store_id}/availability/{gtin}"
    assert f'tagledger_api_requests_total{{method="GET",route="{route}",status="200"}} 3.0' in text
    assert 'tagledger_api_requests_total{method="GET",route="/v1/stores/{store_id}",status="404"} 1.0' in text
    assert 'route="<unmatched>",status="404"} 1.0' in text
    assert f'tagledger_api_request_duration_seconds_count{{method="GET",route="{route}"}} 3.0' in text


async def test_every_operation_is_described_in_openapi(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operations = [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    assert len(operations) >= 11
    for path, method, op in operations:
        assert op.get("description", "").strip(), f"{method.upper()} {path} has no description"
        assert op.get("summary"), f"{method.upper()} {path} has no summary"
        if path.startswith("/v1/"):
            success = op["responses"].get("200") or op["responses"].get("201")  # 201: a reservation was created
            if success is None:  # 204: a deletion, no body
                assert "204" in op["responses"], f"{method.upper()} {path} has no success response"
                continue
            if {"text/event-stream", "application/x-ndjson", "text/csv", "application/ld+json"} & set(
                success["content"]
            ):
                continue  # change stream, OCI export, CSV and EPCIS exports: documented by their description
            ok = success["content"]["application/json"]["schema"]
            assert "$ref" in ok, f"{method.upper()} {path} has no response model"
            err = op["responses"]["422"]["content"]["application/json"]["schema"]
            assert err == {"$ref": "#/components/schemas/ErrorBody"}, f"{method.upper()} {path}: 422 body"


async def test_cors_allows_only_configured_origins(
    ledger: Ledger, ledger_url: str, site: Site, clock: ManualClock
) -> None:
    settings = ApiSettings(database_url=ledger_url, cors_origins=["https://shop.example"], auth_required=False)
    app = create_app(settings, ledger=ledger, site=site, clock=clock)
    async with api_client(app) as client:
        ok = await client.get("/v1/stores", headers={"Origin": "https://shop.example"})
        assert ok.headers["access-control-allow-origin"] == "https://shop.example"
        other = await client.get("/v1/stores", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_the_app_opens_and_closes_its_own_ledger(ledger_url: str, ledger: Ledger) -> None:
    await populate(ledger)
    settings = ApiSettings(database_url=ledger_url, auth_required=False)  # the bundled example site
    app = create_app(settings)
    async with api_client(app) as client:
        r = await client.get(f"/v1/stores/paris-01/availability/{SHIRT}")
        assert r.status_code == 200
        assert r.json()["on_hand"] == 4
        assert (await client.get("/v1/stores/lyon-01")).status_code == 404  # not in the example site
