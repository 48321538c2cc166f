"""The OpenAPI document: valid OpenAPI 3, with the key schemes, each operation's scopes and its answers."""

from __future__ import annotations

import functools
from typing import Any

import httpx
from fastapi import FastAPI
from openapi_spec_validator import validate

from cloud.app import create_app
from cloud.openapi import declared_scopes
from cloud.settings import ApiSettings


@functools.cache  # seconds of CPU to build; the tests only read it
def _document() -> tuple[FastAPI, dict[str, Any]]:
    app = create_app(ApiSettings())
    return app, app.openapi()


def test_the_document_is_valid_openapi() -> None:
    _, doc = _document()
    validate(doc)  # raises on any violation of the OpenAPI 3.x schema
    assert doc["openapi"].startswith("3.")


def test_every_v1_operation_names_the_key_schemes_and_its_scopes() -> None:
    app, doc = _document()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "tlk_<id>_<secret> (tagledger keys issue)",
        "description": "Authorization: Bearer <API key>.",
    }
    assert (schemes["headerApiKey"]["in"], schemes["headerApiKey"]["name"]) == ("header", "X-API-Key")
    declared = declared_scopes(app)
    checked = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            scopes = declared[(method, path)]
            if path == "/metrics":  # a key with the scope metrics, under the setting metrics_require_key
                assert scopes == ["metrics"]
                assert sorted(op["x-required-scopes"]) == ["admin", "metrics"]
                continue
            if not path.startswith("/v1"):
                assert scopes is None
                assert op["security"] == [], (method, path)
                continue
            assert scopes, (method, path)
            accepted = sorted({*scopes, "admin"})
            assert sorted(op["x-required-scopes"]) == accepted, (method, path)
            assert sorted({next(iter(r.values()))[0] for r in op["security"]}) == accepted
            assert {next(iter(r)) for r in op["security"]} == {"bearerApiKey", "headerApiKey"}
            assert {"401", "403", "422", "429", "503"} <= set(op["responses"]), (method, path)
            checked += 1
    assert checked > 20
    stock = doc["paths"]["/v1/stores/{store_id}/stock"]["get"]
    assert sorted(stock["x-required-scopes"]) == ["admin", "audit", "staff"]
    assert "Scopes: any one of" in stock["description"]


def test_route_specific_headers_and_answers_are_declared() -> None:
    _, doc = _document()
    create = doc["paths"]["/v1/reservations"]["post"]
    header = next(p for p in create["parameters"] if p["in"] == "header")
    assert (header["name"], header["required"]) == ("Idempotency-Key", True)
    assert {"200", "201", "400", "409"} <= set(create["responses"])
    look_up = doc["paths"]["/v1/stores/{store_id}/availability/{gtin}"]["get"]
    assert "304" in look_up["responses"]
    items = doc["paths"]["/v1/stores/{store_id}/items"]["get"]
    assert set(items["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    epc = next(p for p in doc["paths"]["/v1/items/{epc}"]["get"]["parameters"] if p["name"] == "epc")
    assert "urn:epc:id:sgtin" in epc["schema"]["pattern"]


async def test_the_served_document_is_the_refined_one(client: httpx.AsyncClient) -> None:
    served = (await client.get("/openapi.json")).json()
    validate(served)
    assert "securitySchemes" in served["components"]
