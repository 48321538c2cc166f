"""Bad parameters get a 4xx with the error body, never a 500."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.app import create_app
from cloud.availability.endpoints import LOOKUP_PATH
from cloud.routing import DirectRoute
from cloud.settings import ApiSettings
from tagledger.clock import ManualClock
from tagledger.ledger import open_ledger
from tagledger.ledger.repository import Ledger
from tagledger.site import Site
from tests.cloud.harness import api_client
from tests.cloud.ledger_data import SHIRT, populate, shirt

VALID = "/v1/stores/paris-01"
LOOKUP = "/v1" + LOOKUP_PATH
UNKNOWN_EPC = "30FF" + "0" * 20
MANY = [SHIRT] * 101

# (method, url, query params, JSON body or raw bytes, status, code)
CASES: list[tuple[str, str, Any, Any, int, str]] = [
    ("GET", "/v1/stores/nope", None, None, 404, "store_not_found"),
    ("GET", "/v1/stores/nope/readers", None, None, 404, "store_not_found"),
    ("GET", f"/v1/stores/nope/availability/{SHIRT}", None, None, 404, "store_not_found"),
    ("GET", f"{VALID}/availability/123", None, None, 422, "invalid_gtin"),
    ("GET", f"{VALID}/availability/00614141000013", None, None, 422, "invalid_gtin"),
    ("GET", f"{VALID}/availability/abcdefghijklmn", None, None, 422, "invalid_gtin"),
    ("GET", f"{VALID}/availability/%20", None, None, 422, "invalid_gtin"),
    ("GET", f"{VALID}/availability/-614141000012", None, None, 422, "invalid_gtin"),
    ("GET", f"{VALID}/availability/{'9' * 5000}", None, None, 422, "invalid_gtin"),
    (
        "GET",
        f"{VALID}/availability/%E2%91%A0%E2%91%A1%E2%91%A2%E2%91%A3%E2%91%A4%E2%91%A5%E2%91%A6%E2%91%A7",
        None,
        None,
        422,
        "invalid_gtin",
    ),  # circled digits ①..⑧
    ("POST", "/v1/availability:batch", None, {}, 422, "invalid_request"),
    ("POST", "/v1/availability:batch", None, b"not json", 400, "invalid_json"),
    ("POST", "/v1/webhooks", None, b'{"url": "http://x.example/', 400, "invalid_json"),
    # Issue 11: a NUL in the secret reached PostgreSQL (500); a `before` beyond BIGINT reached the driver.
    ("POST", "/v1/webhooks", None, {"url": "http://x.example/h", "secret": "a" * 16 + "\0"}, 422, "invalid_request"),
    ("GET", "/v1/webhooks/wh_1/deliveries", {"before": 2**63}, None, 422, "invalid_request"),
    ("GET", "/v1/webhooks/wh_1/deliveries", {"before": "9223372036854775808"}, None, 422, "invalid_request"),
    ("POST", "/v1/availability:batch", None, [], 422, "invalid_request"),
    ("POST", "/v1/availability:batch", None, {"stores": [], "gtins": [SHIRT]}, 422, "invalid_request"),
    ("POST", "/v1/availability:batch", None, {"stores": ["paris-01"], "gtins": []}, 422, "invalid_request"),
    ("POST", "/v1/availability:batch", None, {"stores": ["paris-01"] * 101, "gtins": [SHIRT]}, 422, "invalid_request"),
    ("POST", "/v1/availability:batch", None, {"stores": ["paris-01"], "gtins": MANY}, 422, "invalid_request"),
    ("POST", "/v1/availability:batch", None, {"stores": "paris-01", "gtins": [SHIRT]}, 422, "invalid_request"),
    ("POST", "/v1/availability:batch", None, {"stores": [1], "gtins": [SHIRT]}, 422, "invalid_request"),
    ("POST", "/v1/availability:batch", None, {"stores": ["paris-01"], "gtins": [None]}, 422, "invalid_request"),
    ("POST", "/v1/availability:batch", None, {"stores": ["paris-01"], "gtins": [SHIRT, "x"]}, 422, "invalid_gtin"),
    (
        "POST",
        "/v1/availability:batch",
        None,
        {"stores": ["paris-01", "nope", "nada"], "gtins": [SHIRT]},
        404,
        "store_not_found",
    ),
    ("GET", "/v1/availability:batch", None, None, 405, "method_not_allowed"),
    ("GET", f"{VALID}/stock", {"as_of": "2025-06-01T00:00:00"}, None, 422, "naive_datetime"),
    ("GET", f"{VALID}/stock", {"as_of": "yesterday"}, None, 422, "invalid_request"),
    ("GET", f"{VALID}/stock", {"as_of": "2025-13-01T00:00:00Z"}, None, 422, "invalid_request"),
    ("GET", f"{VALID}/stock", {"as_of": "2025-06-01T00:00:00+25:00"}, None, 422, "invalid_request"),
    ("GET", f"{VALID}/stock", {"as_of": "2999-01-01T00:00:00Z"}, None, 422, "as_of_in_future"),
    ("GET", f"{VALID}/stock", {"as_of": "9999-12-31T23:59:59-23:59"}, None, 422, "as_of_in_future"),
    # Year 1 at +01:00 is year 0 in UTC, which no datetime holds (was a 500).
    ("GET", f"{VALID}/stock", {"as_of": "0001-01-01T00:00:00+01:00"}, None, 422, "invalid_datetime"),
    ("GET", f"{VALID}/stock", {"gtin": "12"}, None, 422, "invalid_gtin"),
    ("GET", f"{VALID}/stock", [("gtin", SHIRT)] * 101, None, 422, "invalid_request"),
    ("GET", "/v1/stores/nope/stock", None, None, 404, "store_not_found"),
    ("GET", "/v1/items/XYZ", None, None, 422, "invalid_epc"),
    ("GET", "/v1/items/AB", None, None, 422, "invalid_epc"),
    ("GET", f"/v1/items/{'A' * 125}", None, None, 422, "invalid_epc"),
    ("GET", f"/v1/items/{UNKNOWN_EPC}", None, None, 404, "item_not_found"),
    ("GET", f"/v1/items/{UNKNOWN_EPC}/history", None, None, 404, "item_not_found"),
    ("GET", "/v1/items/XYZ/history", None, None, 422, "invalid_epc"),
    ("GET", f"/v1/items/{shirt(0)}/history", {"limit": 0}, None, 422, "invalid_request"),
    ("GET", f"/v1/items/{shirt(0)}/history", {"limit": 100_000}, None, 422, "invalid_request"),
    ("GET", f"/v1/items/{shirt(0)}/history", {"limit": "ten"}, None, 422, "invalid_request"),
    ("GET", f"/v1/items/{shirt(0)}/history", {"limit": 2**70}, None, 422, "invalid_request"),
    ("GET", f"/v1/items/{shirt(0)}/history", {"cursor": "garbage"}, None, 422, "invalid_cursor"),
    (
        "GET",
        f"/v1/items/{shirt(0)}/history",
        {"cursor": "ZXY6OTk5OTk5OTk5OTk5OTk5OTk5OTk5"},
        None,
        422,
        "invalid_cursor",
    ),  # "ev:" and an id beyond BIGINT
    ("GET", f"/v1/items/{shirt(0)}/history", {"cursor": "x" * 65}, None, 422, "invalid_request"),
    ("GET", "/v1/nothing-here", None, None, 404, "not_found"),
    # Issue 11, schemathesis on PostgreSQL: a NUL in a parameter reached the ledger (500).
    ("GET", "/v1/stores/paris-01/items", {"zone": "fl\0or"}, None, 422, "invalid_request"),
    ("GET", "/v1/stores/paris-01/stock", {"gtin": "\0"}, None, 422, "invalid_request"),
    ("GET", "/v1/stores/paris%00-01", None, None, 422, "invalid_request"),
    ("GET", f"/v1/items/{shirt(0)}%00", None, None, 422, "invalid_request"),
    ("DELETE", "/v1/stores", None, None, 405, "method_not_allowed"),
]


@pytest.fixture
def ledger_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    # The parameter checks are the app's, not the backend's: one SQLite ledger per
    # case keeps this long table fast; the PostgreSQL run below takes the whole
    # table in one database.
    path = tmp_path / "ledger.sqlite"
    shutil.copyfile(migrated_sqlite, path)
    return f"sqlite:///{path}"


async def _check(
    client: httpx.AsyncClient, method: str, url: str, params: Any, body: Any, status: int, code: str
) -> None:
    kwargs: dict[str, Any] = {"params": params}
    if isinstance(body, bytes):
        kwargs["content"] = body
        kwargs["headers"] = {"content-type": "application/json"}
    elif body is not None:
        kwargs["json"] = body
    r = await client.request(method, url, **kwargs)
    assert r.status_code == status, r.text
    payload = r.json()
    assert set(payload) == {"error"}
    assert set(payload["error"]) == {"code", "message", "details"}
    assert payload["error"]["code"] == code
    assert isinstance(payload["error"]["message"], str)
    assert payload["error"]["message"]


@pytest.mark.parametrize(
    ("method", "url", "params", "body", "status", "code"),
    CASES,
    ids=[f"{c[0]} {c[1][:60]} {c[2] if isinstance(c[2], dict) else ''} -> {c[5]}" for c in CASES],
)
async def test_bad_parameters_get_a_4xx_error_body(
    client: httpx.AsyncClient,
    ledger: Ledger,
    method: str,
    url: str,
    params: Any,
    body: Any,
    status: int,
    code: str,
) -> None:
    await populate(ledger)
    await _check(client, method, url, params, body, status, code)


@pytest.mark.integration
async def test_bad_parameters_on_postgresql(pg_ledger_url: str, site: Site, clock: ManualClock) -> None:
    ledger = await open_ledger(pg_ledger_url)
    try:
        await populate(ledger)
        settings = ApiSettings(database_url=pg_ledger_url, auth_required=False)
        app = create_app(settings, ledger=ledger, site=site, clock=clock)
        async with api_client(app) as client:
            for method, url, params, body, status, code in CASES:
                await _check(client, method, url, params, body, status, code)
    finally:
        await ledger.close()


async def test_invalid_gtin_details_name_the_value_and_position(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/availability:batch", json={"stores": ["paris-01"], "gtins": [SHIRT, "00614141000013"]})
    details = r.json()["error"]["details"]
    assert details["index"] == 1
    assert details["value"] == "00614141000013"
    assert "check digit" in details["reason"]


async def test_unknown_stores_are_all_named(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/availability:batch", json={"stores": ["nope", "paris-01", "nada"], "gtins": [SHIRT]})
    assert r.json()["error"]["details"] == {"store_ids": ["nope", "nada"]}


async def test_validation_details_say_where(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/availability:batch", json={"stores": ["paris-01"]})
    details = r.json()["error"]["details"]
    assert details == [{"loc": ["body", "gtins"], "message": "Field required", "type": "missing"}]


async def test_allow_names_every_method_of_the_path_and_options_answers_it(client: httpx.AsyncClient) -> None:
    # Issue 11: Starlette named only the first matching route's methods (GET /v1/webhooks has a POST twin).
    r = await client.request("PUT", "/v1/webhooks")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, OPTIONS, POST"
    assert r.json()["error"]["code"] == "method_not_allowed"
    r = await client.options("/v1/webhooks")
    assert r.status_code == 204
    assert r.headers["allow"] == "GET, OPTIONS, POST"
    r = await client.options("/v1/availability:batch")
    assert (r.status_code, r.headers["allow"]) == (204, "OPTIONS, POST")
    r = await client.options("/v1/nothing-here")
    assert r.status_code == 404
    r = await client.head("/v1/stores")  # what Allow says is what is served
    assert (r.status_code, r.headers["allow"]) == (405, "GET, OPTIONS")


async def test_openapi_gives_identifier_patterns_and_the_400_of_bodies(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()

    def param(path: str, name: str) -> dict[str, Any]:
        found = [p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == name]
        return found[0]["schema"]

    gtin = param("/v1/stores/{store_id}/availability/{gtin}", "gtin")["pattern"]
    assert re.fullmatch(gtin, "4006381333931")
    assert not re.fullmatch(gtin, "12a")
    epc = param("/v1/items/{epc}", "epc")["pattern"]
    assert re.fullmatch(epc, "30f4ab")
    assert not re.fullmatch(epc, "XYZ")
    cursor = param("/v1/items/{epc}/history", "cursor")
    assert any(v.get("pattern") == "^[A-Za-z0-9_-]+$" for v in cursor["anyOf"])
    stock_gtin = param("/v1/stores/{store_id}/stock", "gtin")
    assert any(v.get("items", {}).get("pattern") == gtin for v in stock_gtin["anyOf"])
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if "requestBody" in op:
                assert "400" in op["responses"], (method, path)


async def test_the_lookup_is_tried_first_and_its_path_answers_as_declared(client: httpx.AsyncClient) -> None:
    # cloud.app puts the look-up before every other route (lookup_first_route); the route its
    # router declares still answers the other methods and is the one in the OpenAPI document.
    first = create_app(ApiSettings()).router.routes[0]
    assert isinstance(first, DirectRoute)
    assert (first.path, first.methods, first.include_in_schema) == (LOOKUP, {"GET"}, False)
    url = "/v1/stores/paris-01/availability/00614141000012"
    for method in ("POST", "HEAD", "DELETE"):
        r = await client.request(method, url)
        assert (r.status_code, r.headers["allow"]) == (405, "GET, OPTIONS"), method
    assert (await client.post(url)).json()["error"]["code"] == "method_not_allowed"
    documented = (await client.get("/openapi.json")).json()["paths"][LOOKUP]
    assert list(documented) == ["get"]
    assert documented["get"]["summary"] == "Availability of one GTIN in one store"
