"""The API's errors and the one place that turns errors into HTTP responses.

Every error body has the same machine-readable shape::

    {"error": {"code": "store_not_found", "message": "...", "details": {...} | null}}

``code`` is stable and meant for programs; ``message`` is for people.  Services
raise :class:`ApiError` subclasses; FastAPI's own request validation errors,
Starlette's HTTP errors (unknown route, wrong method) and ledger errors are
mapped here too, so that a bad parameter is always a 4xx with this body and never
a 500.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from tagledger.ledger.repository import LedgerError, LedgerUnavailable

log = logging.getLogger(__name__)


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """The body of every non-2xx response."""

    error: ErrorInfo


class ApiError(Exception):
    """Root of the errors the API reports to its callers."""

    status_code = 400
    code = "bad_request"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    def response_headers(self) -> dict[str, str] | None:
        return self.headers


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class StoreNotFound(NotFound):
    code = "store_not_found"

    def __init__(self, store_ids: list[str]) -> None:
        which = ", ".join(repr(s) for s in store_ids)
        super().__init__(f"unknown store {which}", details={"store_ids": store_ids})


class ItemNotFound(NotFound):
    code = "item_not_found"

    def __init__(self, epc: str) -> None:
        super().__init__(f"the ledger has no item with EPC {epc}", details={"epc": epc})


class InvalidParameter(ApiError):
    """A parameter that parsed but makes no sense (bad GTIN, naive time, ...)."""

    status_code = 422
    code = "invalid_parameter"


class Unauthorized(ApiError):
    """No API key, a malformed one, an unknown one or a revoked one (which of these is not said)."""

    status_code = 401
    code = "unauthorized"
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": 'Bearer realm="tagledger"'}


class Forbidden(ApiError):
    status_code = 403
    code = "forbidden"


class Conflict(ApiError):
    status_code = 409
    code = "conflict"


class RateLimited(ApiError):
    """The API key used up its request budget; ``Retry-After`` says when to come back."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, key_id: str, retry_after_s: float, rate: float, burst: float) -> None:
        super().__init__(
            f"too many requests for API key {key_id}; retry in {retry_after_s:.2f} s",
            details={"key_id": key_id, "retry_after_s": round(retry_after_s, 3), "rate_per_s": rate, "burst": burst},
        )
        self.retry_after_s = retry_after_s

    def response_headers(self) -> dict[str, str] | None:
        # Retry-After takes whole seconds; rounding up never invites a retry that is still refused.
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class ServiceUnavailable(ApiError):
    status_code = 503
    code = "ledger_unavailable"


def error_response(status_code: int, code: str, message: str, details: Any = None) -> JSONResponse:
    body = ErrorBody(error=ErrorInfo(code=code, message=message, details=jsonable_encoder(details)))
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
}


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only loc / msg / type: ``ctx`` and ``input`` may hold arbitrary objects (and
    # echoing a whole oversized body back would be a waste).
    return [
        {"loc": list(err.get("loc", ())), "message": str(err.get("msg", "")), "type": str(err.get("type", ""))}
        for err in exc.errors()
    ]


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    response = error_response(exc.status_code, exc.code, exc.message, exc.details)
    headers = exc.response_headers()
    if headers:
        response.headers.update(headers)
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    if any(d["type"] == "json_invalid" for d in details):
        # Not a request with a bad field but no JSON at all: 400, as documented in
        # OpenAPI for every operation with a body (cloud.openapi).
        where = details[0]["loc"]
        return error_response(400, "invalid_json", "the request body is not valid JSON", {"loc": where})
    where = ", ".join(".".join(str(p) for p in d["loc"]) + ": " + d["message"] for d in details[:5])
    return error_response(422, "invalid_request", f"invalid request: {where}", details)


class MethodTable:
    """Which methods the API serves at a path, from every route of the given routers.

    Starlette's 405 names only the methods of the first route whose path matched, but
    one path may have several routes (``GET`` and ``POST /v1/webhooks``).
    """

    def __init__(self, routes: Iterable[object]) -> None:
        by_path: dict[str, set[str]] = {}
        for route in routes:
            path, methods = getattr(route, "path", None), getattr(route, "methods", None)
            if isinstance(path, str) and methods:
                by_path.setdefault(path, set()).update(methods)
        self._table = [(compile_path(path)[0], methods) for path, methods in by_path.items()]

    def allowed(self, path: str) -> list[str]:
        """The methods of ``path`` (OPTIONS with any: it is answered), sorted; empty for an unknown path."""
        methods: set[str] = set()
        for regex, served in self._table:
            if regex.match(path):
                methods |= served
        # Not HEAD: FastAPI's GET routes do not answer it (a HEAD is 405 like any other method).
        if methods:
            methods.add("OPTIONS")
        return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        table: MethodTable | None = getattr(request.app.state, "methods", None)
        allow = ", ".join(table.allowed(request.url.path) if table is not None else ())
        if request.method == "OPTIONS" and allow:
            # What a path allows is what OPTIONS asks; CORS preflights never get here
            # (the CORS middleware answers them when origins are configured).
            return Response(status_code=204, headers={"Allow": allow})
        response = error_response(405, "method_not_allowed", f"{request.method} is not allowed here; allowed: {allow}")
        response.headers["Allow"] = allow
        return response
    code = _STATUS_CODES.get(exc.status_code, "server_error" if exc.status_code >= 500 else "client_error")
    response = error_response(exc.status_code, code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


#: PostgreSQL's "character not in repertoire": in a UTF-8 database only NUL (U+0000) gets there.
_NUL_SQLSTATE = "22021"


def nul_refused(where: str) -> JSONResponse:
    """The one answer to a NUL character, wherever it is found (PostgreSQL's text cannot hold U+0000):
    in the path or query (``cloud.input_guard``) or, past the models, by the ledger."""
    message = f"NUL characters (%00) are not accepted in the {where}"
    return error_response(
        422, "invalid_request", message, [{"loc": [where], "message": message, "type": "nul_character"}]
    )


async def _ledger_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LedgerError)
    if isinstance(exc, LedgerUnavailable):
        # Transient by contract: the caller may retry.
        log.warning("ledger unavailable during %s %s: %s", request.method, request.url.path, exc)
        return error_response(503, "ledger_unavailable", "the ledger cannot be reached; retry shortly")
    state = str(getattr(exc.__cause__, "sqlstate", "") or "")
    if state == _NUL_SQLSTATE:
        return nul_refused("body")
    if state.startswith("22"):
        # SQL data exception (a NUL in text, a number out of range, ...): the request
        # carried a value the database cannot hold, whatever endpoint let it through.
        log.warning("value refused by the ledger during %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            422, "invalid_value", "a value in the request cannot be stored by the ledger", {"sqlstate": state}
        )
    log.error("ledger error during %s %s: %s", request.method, request.url.path, exc)
    return error_response(500, "ledger_error", "the ledger refused the request")


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error during %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(LedgerError, _ledger_error)
    app.add_exception_handler(Exception, _unexpected_error)


#: For ``responses=`` in route declarations, so OpenAPI documents the error body.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API key (code `unauthorized`)."},
    403: {"model": ErrorBody, "description": "The key lacks the scope (`insufficient_scope`) or the store."},
    404: {"model": ErrorBody, "description": "Unknown store, item or route."},
    422: {"model": ErrorBody, "description": "A parameter is malformed."},
    429: {"model": ErrorBody, "description": "The API key's rate limit is spent (`rate_limited`); see Retry-After."},
    503: {"model": ErrorBody, "description": "The ledger cannot be reached; retry."},
}
