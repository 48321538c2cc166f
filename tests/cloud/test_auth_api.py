"""API keys: the scope matrix enforced on EVERY route of the app, store limits, revocation, 401/403 bodies."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from cloud.app import create_app
from cloud.auth import tokens
from cloud.auth.deps import Require
from cloud.auth.repository import ApiKeyRecord, add_api_key, api_keys, revoke_api_key
from cloud.auth.scopes import Scope
from cloud.settings import ApiSettings
from tagledger.clock import ManualClock
from tagledger.ledger.repository import Ledger
from tagledger.site import Site
from tests.cloud.harness import api_client
from tests.cloud.ledger_data import NOW, SHIRT, populate, shirt

R, W, S, A = Scope.AVAILABILITY_READ, Scope.RESERVATIONS_WRITE, Scope.STAFF, Scope.AUDIT

#: The matrix: which scopes open which endpoint (admin opens all).  A new route must be added here.
EXPECTED: dict[tuple[str, str], frozenset[Scope]] = {
    ("GET", "/v1/stores"): frozenset({R, S, A}),
    ("GET", "/v1/stores/{store_id}"): frozenset({R, S, A}),
    ("GET", "/v1/stores/{store_id}/readers"): frozenset({S}),
    ("GET", "/v1/stores/{store_id}/anomalies"): frozenset({S, A}),
    ("GET", "/v1/stores/{store_id}/availability/{gtin}"): frozenset({R, S}),
    ("POST", "/v1/availability:batch"): frozenset({R, S}),
    ("GET", "/v1/availability/nearby"): frozenset({R, S}),
    ("GET", "/v1/stores/{store_id}/changes"): frozenset({R, S}),
    ("GET", "/v1/stores/{store_id}/stock"): frozenset({S, A}),
    ("GET", "/v1/items/{epc}"): frozenset({S, A}),
    ("GET", "/v1/items/{epc}/history"): frozenset({S, A}),
    ("GET", "/v1/stores/{store_id}/items"): frozenset({S, A}),
    ("GET", "/v1/stores/{store_id}/events"): frozenset({S, A}),
    ("GET", "/v1/stores/{store_id}/replenishment"): frozenset({S, A}),
    ("POST", "/v1/reservations"): frozenset({W}),
    ("GET", "/v1/reservations/{reservation_id}"): frozenset({W}),
    ("POST", "/v1/reservations/{reservation_id}/confirm"): frozenset({W}),
    ("POST", "/v1/reservations/{reservation_id}/release"): frozenset({W}),
    ("GET", "/v1/stores/{store_id}/feeds/google-local-inventory"): frozenset({R, S}),
    ("GET", "/v1/stores/{store_id}/feeds/salesforce-oci"): frozenset({R, S}),
    ("POST", "/v1/stores/{store_id}/feeds/shopify-inventory-set-quantities"): frozenset({R, S}),
    ("POST", "/v1/webhooks"): frozenset({Scope.ADMIN}),
    ("GET", "/v1/webhooks"): frozenset({Scope.ADMIN}),
    ("GET", "/v1/webhooks/{webhook_id}"): frozenset({Scope.ADMIN}),
    ("DELETE", "/v1/webhooks/{webhook_id}"): frozenset({Scope.ADMIN}),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): frozenset({Scope.ADMIN}),
    ("GET", "/v1/audit/stores/{store_id}/stock.csv"): frozenset({S, A}),
    ("POST", "/v1/audit/counts"): frozenset({S, A}),
    ("GET", "/v1/audit/counts"): frozenset({S, A}),
    ("GET", "/v1/audit/counts/{count_id}"): frozenset({S, A}),
    ("POST", "/v1/audit/counts/{count_id}/reads"): frozenset({S, A}),
    ("POST", "/v1/audit/counts/{count_id}/close"): frozenset({S, A}),
    ("POST", "/v1/audit/book-imports"): frozenset({A}),
    ("GET", "/v1/audit/book-imports"): frozenset({A}),
    ("GET", "/v1/audit/book-imports/{import_id}/differences"): frozenset({A}),
    ("POST", "/v1/audit/book-imports/{import_id}/approvals"): frozenset({A}),
    ("GET", "/v1/audit/log"): frozenset({A}),
    ("GET", "/v1/audit/stores/{store_id}/kpis"): frozenset({S, A}),
    ("GET", "/v1/audit/stores/{store_id}/epcis"): frozenset({A}),
}
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")} | {
    # The console page and the offline docs pages (they hold no data; the data they show comes from /v1).
    ("GET", "/"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    ("GET", "/docs/oauth2-redirect"),
    # Who the caller is: signed_in false without a valid key (tests/cloud/console).
    ("GET", "/console/session"),
}

_keys = itertools.count()


def _requires(dependant: Dependant) -> list[Require]:
    found = [d.call for d in dependant.dependencies if isinstance(d.call, Require)]
    for sub in dependant.dependencies:
        found += _requires(sub)
    return found


def declared(app: FastAPI) -> dict[tuple[str, str], frozenset[Scope] | None]:
    out: dict[tuple[str, str], frozenset[Scope] | None] = {}
    for path, route in _routes(app):
        if not isinstance(route, APIRoute):
            continue  # /openapi.json, /docs: Starlette routes, public by design
        requires = _requires(route.dependant)
        assert len(requires) <= 1, f"{path} declares {len(requires)} Require"
        for method in route.methods:
            # A Require with ``when`` (/metrics) asks for a key only under a setting: public by default.
            out[(method, path)] = requires[0].scopes if requires and requires[0].when is None else None
    assert len(out) >= len(EXPECTED) + len(PUBLIC)  # the walk found the routes
    return out


def _routes(app: FastAPI) -> list[tuple[str, Any]]:
    """Every route with its full path (FastAPI >= 0.16x keeps included routers as lazy branches)."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
    except ImportError:
        return [(getattr(r, "path", ""), r) for r in app.routes]
    return [(ctx.path, ctx.original_route) for ctx in iter_route_contexts(app.routes)]


class Keys:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def issue(self, scopes: set[Scope] | frozenset[Scope], stores: tuple[str, ...] | None = None) -> str:
        key_id, token = tokens.new_token()
        await add_api_key(
            self.ledger,
            ApiKeyRecord(
                id=key_id,
                secret_sha256=tokens.digest(token),
                name=f"test-{next(_keys)}",
                scopes=tuple(sorted(s.value for s in scopes)),
                stores=stores,
                created_us=NOW,
            ),
        )
        return token


@pytest.fixture
async def app_and_keys(
    ledger_url: str, ledger: Ledger, site: Site, clock: ManualClock
) -> AsyncIterator[tuple[httpx.AsyncClient, Keys, FastAPI]]:
    await populate(ledger)
    clock.set(NOW)
    settings = ApiSettings(database_url=ledger_url, auth_required=True, auth_cache_s=0, hold_sweep_s=0)
    app = create_app(settings, ledger=ledger, site=site, clock=clock)
    async with api_client(app) as client:
        yield client, Keys(ledger), app


async def _call(client: httpx.AsyncClient, method: str, path: str, token: str | None, hold_id: str) -> httpx.Response:
    url = (
        path.replace("{store_id}", "paris-01")
        .replace("{gtin}", SHIRT)
        .replace("{epc}", shirt(1))
        .replace("{reservation_id}", hold_id)
        .replace("{webhook_id}", "wh_none")  # 404 once past auth: enough to tell 401/403 apart
    )
    headers = {"Idempotency-Key": f"k-{next(_keys)}"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    params: dict[str, Any] = {}
    body: Any = None
    if path == "/v1/availability:batch":
        body = {"stores": ["paris-01"], "gtins": [SHIRT]}
    elif path == "/v1/reservations":
        body = {"store_id": "paris-01", "gtin": SHIRT, "quantity": 1}
    elif path.endswith("/shopify-inventory-set-quantities"):
        body = {"location_id": "L", "items": [{"gtin": SHIRT, "inventory_item_id": "I", "compare_quantity": 0}]}
    elif path == "/v1/webhooks":
        body = {"url": "http://127.0.0.1:9/hook"}
    elif path.endswith("/changes"):
        params = {"max_s": 0}  # the stream ends at once, so the in-process client gets its whole body
    elif path == "/v1/availability/nearby":
        params = {"gtin": SHIRT, "lat": 48.86, "lon": 2.35, "radius_km": 1000}
    return await client.request(method, url, headers=headers, params=params, json=body)


async def test_every_route_declares_the_scopes_of_the_matrix(
    app_and_keys: tuple[httpx.AsyncClient, Keys, FastAPI],
) -> None:
    _, _, app = app_and_keys
    routes = declared(app)
    assert {k for k, v in routes.items() if v is None} == PUBLIC
    assert {k: v for k, v in routes.items() if v is not None} == EXPECTED


async def test_the_scope_matrix_is_enforced_on_every_route(
    app_and_keys: tuple[httpx.AsyncClient, Keys, FastAPI],
) -> None:
    client, keys, app = app_and_keys
    admin = await keys.issue({Scope.ADMIN})
    made = await client.post(
        "/v1/reservations",
        json={"store_id": "paris-01", "gtin": SHIRT, "quantity": 1},
        headers={"Authorization": f"Bearer {admin}", "Idempotency-Key": "matrix"},
    )
    assert made.status_code == 201, made.text
    hold_id = made.json()["id"]
    by_scope = {s: await keys.issue({s}) for s in Scope}
    checked = 0
    for (method, path), scopes in declared(app).items():
        if scopes is None:
            r = await _call(client, method, path, None, hold_id)
            assert r.status_code not in (401, 403), (method, path)
            continue
        r = await _call(client, method, path, None, hold_id)
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")
        for scope, token in by_scope.items():
            r = await _call(client, method, path, token, hold_id)
            if scope in scopes or scope is Scope.ADMIN:
                assert r.status_code not in (401, 403), (method, path, scope, r.text)
            else:
                assert r.status_code == 403, (method, path, scope, r.text)
                error = r.json()["error"]
                assert error["code"] == "insufficient_scope"
                assert error["details"]["required_any_of"] == sorted(s.value for s in scopes)
        checked += 1
    assert checked == len(EXPECTED)


async def test_a_store_limited_key_sees_only_its_stores(
    app_and_keys: tuple[httpx.AsyncClient, Keys, FastAPI],
) -> None:
    client, keys, _ = app_and_keys
    lyon = {"Authorization": f"Bearer {await keys.issue({Scope.STAFF, Scope.RESERVATIONS_WRITE}, ('lyon-01',))}"}
    r = await client.get(f"/v1/stores/paris-01/availability/{SHIRT}", headers=lyon)
    assert r.status_code == 403
    assert r.json()["error"] == {
        "code": "store_forbidden",
        "message": "the API key is not valid for store 'paris-01'",
        "details": {"store_ids": ["paris-01"], "key_id": r.json()["error"]["details"]["key_id"]},
    }
    assert (await client.get(f"/v1/stores/lyon-01/availability/{SHIRT}", headers=lyon)).status_code == 200
    stores = (await client.get("/v1/stores", headers=lyon)).json()["stores"]
    assert [s["id"] for s in stores] == ["lyon-01"]
    batch = await client.post(
        "/v1/availability:batch", json={"stores": ["lyon-01", "paris-01"], "gtins": [SHIRT]}, headers=lyon
    )
    assert batch.json()["error"]["details"]["store_ids"] == ["paris-01"]
    assert (await client.get(f"/v1/items/{shirt(1)}", headers=lyon)).status_code == 403  # a Paris item
    hold = await client.post(
        "/v1/reservations",
        json={"store_id": "paris-01", "gtin": SHIRT, "quantity": 1},
        headers={**lyon, "Idempotency-Key": "p"},
    )
    assert hold.json()["error"]["code"] == "store_forbidden"


async def test_a_reservation_is_read_confirmed_and_released_only_by_its_key_or_an_admin(
    app_and_keys: tuple[httpx.AsyncClient, Keys, FastAPI],
) -> None:
    # Issue 11: any reservations:write key could read, confirm or release any key's hold.
    client, keys, _ = app_and_keys
    shop = {"Authorization": f"Bearer {await keys.issue({Scope.RESERVATIONS_WRITE})}"}
    other = {"Authorization": f"Bearer {await keys.issue({Scope.RESERVATIONS_WRITE})}"}
    admin = {"Authorization": f"Bearer {await keys.issue({Scope.ADMIN})}"}
    made = await client.post(
        "/v1/reservations",
        json={"store_id": "paris-01", "gtin": SHIRT, "quantity": 1},
        headers={**shop, "Idempotency-Key": "own"},
    )
    assert made.status_code == 201, made.text
    hold_id = made.json()["id"]
    for method, suffix in [("GET", ""), ("POST", "/confirm"), ("POST", "/release")]:
        r = await client.request(method, f"/v1/reservations/{hold_id}{suffix}", headers=other)
        assert r.status_code == 404, (method, suffix, r.text)
        assert r.json()["error"]["code"] == "reservation_not_found"
    r = await client.get(f"/v1/reservations/{hold_id}", headers=shop)
    assert (r.status_code, r.json()["state"]) == (200, "held")
    r = await client.post(f"/v1/reservations/{hold_id}/confirm", headers=shop)
    assert (r.status_code, r.json()["state"]) == (200, "confirmed")
    r = await client.post(f"/v1/reservations/{hold_id}/release", headers=admin)
    assert (r.status_code, r.json()["state"]) == (200, "released")


@pytest.mark.parametrize(
    "header",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer tlk_0123456789abcdef_" + "A" * 43},  # well formed, unknown
        {"X-API-Key": "tlk_zz"},
    ],
)
async def test_missing_or_bad_keys_are_401(
    app_and_keys: tuple[httpx.AsyncClient, Keys, FastAPI], header: dict[str, str]
) -> None:
    client, _, _ = app_and_keys
    r = await client.get("/v1/stores", headers=header)
    assert r.status_code == 401
    assert r.json()["error"]["code"] in {"unauthorized", "invalid_api_key"}


async def test_a_revoked_key_or_a_wrong_secret_is_refused(
    app_and_keys: tuple[httpx.AsyncClient, Keys, FastAPI], ledger: Ledger
) -> None:
    client, keys, _ = app_and_keys
    token = await keys.issue({Scope.AVAILABILITY_READ})
    assert (await client.get("/v1/stores", headers={"X-API-Key": token})).status_code == 200
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert (await client.get("/v1/stores", headers={"X-API-Key": forged})).status_code == 401
    key_id = tokens.key_id_of(token)
    assert key_id is not None
    assert await revoke_api_key(ledger, key_id, now_us=NOW + 1)
    r = await client.get("/v1/stores", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert not await revoke_api_key(ledger, "0000000000000000", now_us=NOW)


async def test_keys_are_stored_hashed(app_and_keys: tuple[httpx.AsyncClient, Keys, FastAPI], ledger: Ledger) -> None:
    _, keys, _ = app_and_keys
    token = await keys.issue({Scope.AUDIT}, ("paris-01",))
    (stored,) = await api_keys(ledger)
    assert stored.secret_sha256 == tokens.digest(token)
    assert token not in repr(stored)
    assert (stored.scopes, stored.stores, stored.revoked_us) == (("audit",), ("paris-01",), None)


async def test_metrics_can_require_a_metrics_key(
    ledger_url: str, ledger: Ledger, site: Site, clock: ManualClock
) -> None:
    # Issue 11: /metrics was open to anyone who reaches the API; metrics_require_key closes it.
    settings = ApiSettings(database_url=ledger_url, auth_required=True, auth_cache_s=0, metrics_require_key=True)
    keys = Keys(ledger)
    async with api_client(create_app(settings, ledger=ledger, site=site, clock=clock)) as client:
        assert (await client.get("/metrics")).status_code == 401
        staff = await keys.issue({Scope.STAFF})
        r = await client.get("/metrics", headers={"Authorization": f"Bearer {staff}"})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "insufficient_scope")
        for scope in (Scope.METRICS, Scope.ADMIN):
            token = await keys.issue({scope})
            r = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200
            assert "tagledger_api_requests_total" in r.text
        metrics_key = await keys.issue({Scope.METRICS})
        r = await client.get("/v1/stores", headers={"Authorization": f"Bearer {metrics_key}"})
        assert r.status_code == 403  # a scraper's key opens nothing else
