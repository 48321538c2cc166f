"""What the OpenAPI document says beyond what the route declarations give FastAPI.

Two things are added to the generated schema, once, when it is first asked for:

* Patterns of the identifiers the endpoints parse themselves.  GTINs, EPCs and
  cursors are taken as plain strings and checked in :mod:`cloud.params` and the
  services, so that a bad one gets its own error code (``invalid_gtin``,
  ``invalid_epc``, ``invalid_cursor``) rather than FastAPI's generic
  ``invalid_request`` -- and so the hot availability route stays a
  :class:`cloud.routing.DirectRoute`, which takes only unconstrained ``str`` path
  parameters.  The schema still tells clients (and generated clients, and
  schemathesis) which strings can succeed.
* The 400 ``invalid_json`` answer of every operation with a request body: a body
  that is not JSON at all is refused before validation (:mod:`cloud.errors`).
* Security: the two ways to present an API key (``Authorization: Bearer`` and
  ``X-API-Key``) as security schemes, and on every ``/v1`` operation the scopes
  its :class:`~cloud.auth.deps.Require` accepts -- one security requirement per
  scheme x scope, since requirements are alternatives (any one suffices) while
  the scopes inside one are all needed; ``admin`` passes everywhere.  The same
  list is in ``x-required-scopes``.  Operations without a ``Require`` (health,
  metrics) have ``security: []``.
* Headers and answers the routes handle themselves: ``Idempotency-Key`` is
  required on ``POST /v1/reservations`` (422 ``idempotency_key_required``
  without it) and its replay answers 200; the availability look-up answers 304
  to a matching ``If-None-Match``.

The patterns are the shape only; a GTIN of the right shape may still fail its check
digit (422 ``invalid_gtin``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from cloud.auth.deps import Require

#: Parameter name -> pattern of its strings (each item's, for a repeated parameter).
PARAMETER_PATTERNS = {
    # GTIN-8, -12, -13 or -14 (cloud.gtin).
    "gtin": r"^[0-9]{8,14}$",
    # EPC hex, 16 to 496 bits, either case, or an SGTIN pure-identity URN (cloud.epcs.parse_epc).
    "epc": r"^([0-9A-Fa-f]{4,124}|urn:epc:id:sgtin:[0-9]+\.[0-9]+\.[!%-?A-Z_a-z\x22]{1,60})$",
    # Opaque, base64url without padding (cloud.pagination, cloud.params).
    "cursor": r"^[A-Za-z0-9_-]+$",
}

BAD_BODY_RESPONSE = {
    "description": "The body is not JSON (code `invalid_json`).",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}

_METHODS = ("get", "put", "post", "delete", "patch")

BEARER = "bearerApiKey"
HEADER_KEY = "headerApiKey"
SECURITY_SCHEMES = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "tlk_<id>_<secret> (tagledger keys issue)",
        "description": "Authorization: Bearer <API key>.",
    },
    HEADER_KEY: {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The same API key in X-API-Key (e.g. added by an SSO proxy in front of the console).",
    },
}

#: (method, path) -> extra answers that the generic ones do not cover.
EXTRA_RESPONSES: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("post", "/v1/reservations"): {
        "200": {
            "description": "A retry with an Idempotency-Key already used for the same request: the same hold.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReservationOut"}}},
        }
    },
    ("get", "/v1/stores/{store_id}/availability/{gtin}"): {
        "304": {"description": "Nothing changed since the ETag given in If-None-Match."}
    },
}
REQUIRED_HEADERS = {("post", "/v1/reservations"): "idempotency-key"}


def _add_pattern(schema: dict[str, Any], pattern: str) -> None:
    if schema.get("type") == "string":
        schema["pattern"] = pattern
    elif schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        _add_pattern(schema["items"], pattern)
    for variant in schema.get("anyOf", ()):  # an optional parameter: [{string}, {null}]
        _add_pattern(variant, pattern)


def declared_scopes(app: FastAPI) -> dict[tuple[str, str], list[str] | None]:
    """``(method, path)`` -> the scopes its Require accepts (sorted), or None for a route without one."""
    try:
        from fastapi.routing import iter_route_contexts  # noqa: PLC0415
    except ImportError:  # FastAPI before lazy included routers: app.routes has them all
        pairs = [(getattr(r, "path", ""), r) for r in app.routes]
    else:
        pairs = [(ctx.path, ctx.original_route) for ctx in iter_route_contexts(app.routes)]
    out: dict[tuple[str, str], list[str] | None] = {}
    for path, route in pairs:
        if not isinstance(route, APIRoute):
            continue
        found = _requires(route.dependant)
        for method in route.methods or ():
            out[(method.lower(), path)] = sorted(s.value for s in found[0].scopes) if found else None
    return out


def _requires(dependant: Dependant) -> list[Require]:
    found = [d.call for d in dependant.dependencies if isinstance(d.call, Require)]
    for sub in dependant.dependencies:
        found += _requires(sub)
    return found


def _secure(operation: dict[str, Any], scopes: list[str] | None) -> None:
    if scopes is None:
        operation["security"] = []
        return
    accepted = [*scopes, "admin"] if "admin" not in scopes else scopes
    operation["security"] = [{scheme: [scope]} for scope in accepted for scheme in (BEARER, HEADER_KEY)]
    operation["x-required-scopes"] = accepted
    note = f"Scopes: any one of {', '.join(f'`{s}`' for s in accepted)}."
    operation["description"] = f"{operation.get('description', '').rstrip()}\n\n{note}".lstrip()


def refine(schema: dict[str, Any], scopes: dict[tuple[str, str], list[str] | None] | None = None) -> dict[str, Any]:
    """Add patterns, security, required headers and the answers FastAPI cannot see (in place; returned)."""
    if scopes is not None:
        schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for path, path_item in schema.get("paths", {}).items():
        for method in _METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            if scopes is not None and (method, path) in scopes:
                _secure(operation, scopes[(method, path)])
            for code, answer in EXTRA_RESPONSES.get((method, path), {}).items():
                operation.setdefault("responses", {}).setdefault(code, answer)
            required = REQUIRED_HEADERS.get((method, path))
            for parameter in operation.get("parameters", ()):
                if parameter.get("in") == "header" and parameter.get("name", "").lower() == required:
                    parameter["required"] = True
                    parameter["name"] = "Idempotency-Key"
                    parameter["schema"] = {"type": "string", "minLength": 1, "maxLength": 200}
            for parameter in operation.get("parameters", ()):
                pattern = PARAMETER_PATTERNS.get(parameter.get("name", ""))
                if pattern is not None and "schema" in parameter:
                    _add_pattern(parameter["schema"], pattern)
            if "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault("400", BAD_BODY_RESPONSE)
    return schema


def install(app: FastAPI) -> None:
    """Serve the refined document at ``/openapi.json`` (built on the first request, then kept)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = refine(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                    servers=app.servers,
                ),
                declared_scopes(app),
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
