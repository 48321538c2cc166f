"""uvicorn's httptools protocol, writing each response in one piece.

An ASGI response arrives as two messages, its head and its body, and uvicorn
writes each to the socket at once: two ``send`` calls per response, two TCP
segments, and a client that may wake up twice to read one answer.  Here the
connection's transport is wrapped so that what is written during one turn of
the event loop goes out in one ``send`` at the end of that turn (both messages
of a plain response are written in the same turn).  Nothing waits longer than
that turn; a streamed response (the change stream) still leaves chunk by chunk.

Measured with 16 keep-alive connections against the bench ledger: CPU per
``/healthz`` request 281/283 -> 191/217 us, per availability look-up 502/442 ->
302/429 us (docs/benchmarks.md for the method).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _TurnBufferedTransport:
    """Gathers the writes of one loop turn into one write; everything else is the transport's own."""

    __slots__ = ("_buffer", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._buffer:
            self._loop.call_soon(self._flush)
        self._buffer.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _flush(self) -> None:
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        # The last answer before a close (Connection: close, a 4xx from the parser)
        # must still go out, and before the FIN.
        self._flush()
        self._transport.close()

    def get_write_buffer_size(self) -> int:
        return sum(len(b) for b in self._buffer) + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose writes go through a :class:`_TurnBufferedTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Reading flow control (``self.flow``) keeps the real transport; only writes are gathered.
        self.transport = _TurnBufferedTransport(transport, self.loop)  # type: ignore[assignment]
