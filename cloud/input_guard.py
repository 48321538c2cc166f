"""Refuse NUL characters in the request path and query before any endpoint sees them.

PostgreSQL's text cannot hold U+0000: a path or query parameter carrying one
(``?zone=%00``), passed on to a query, made the ledger refuse the statement and the
API answer 500 (found by schemathesis on PostgreSQL).  No identifier or parameter of
the API may contain one, so they are refused here once, for every route, as a 422
with the API's error body.  JSON bodies are validated by their models.

A plain ASGI middleware: two substring checks per request.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from cloud.errors import nul_refused


class RejectNul:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query: bytes = scope.get("query_string", b"")
            where = "path" if "\x00" in scope.get("path", "") else "query"
            if where == "path" or b"%00" in query or b"\x00" in query:
                await nul_refused(where)(scope, receive, send)
                return
        await self.app(scope, receive, send)
