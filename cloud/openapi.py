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

The patterns are the shape only; a GTIN of the right shape may still fail its check
digit (422 ``invalid_gtin``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

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


def _add_pattern(schema: dict[str, Any], pattern: str) -> None:
    if schema.get("type") == "string":
        schema["pattern"] = pattern
    elif schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        _add_pattern(schema["items"], pattern)
    for variant in schema.get("anyOf", ()):  # an optional parameter: [{string}, {null}]
        _add_pattern(variant, pattern)


def refine(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the patterns and the 400 answers to a generated OpenAPI document (in place; returned)."""
    for path_item in schema.get("paths", {}).values():
        for method in _METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
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
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
