"""A tiny HTTP responder for /healthz, /readyz and /metrics.

The gateway has no web framework (it would only be needed for three GET routes),
so this is a deliberately minimal HTTP/1.0 responder on asyncio streams.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

Probe = Callable[[], Awaitable[bool]]


class HealthServer:
    def __init__(self, host: str, port: int, *, ready: Probe, metrics: Callable[[], bytes]) -> None:
        self._host, self._port = host, port
        self._ready = ready
        self._metrics = metrics
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> HealthServer:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            path = request.split(b" ")[1].decode() if request.count(b" ") >= 2 else ""
            if path == "/healthz":
                status, body, ctype = 200, b'{"status":"ok"}', "application/json"
            elif path == "/readyz":
                ok = await self._ready()
                status, ctype = (200 if ok else 503), "application/json"
                body = b'{"status":"ready"}' if ok else b'{"status":"not_ready"}'
            elif path == "/metrics":
                status, body, ctype = 200, self._metrics(), "text/plain; version=0.0.4"
            else:
                status, body, ctype = 404, b'{"error":{"code":"not_found"}}', "application/json"
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            head = f"HTTP/1.0 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
