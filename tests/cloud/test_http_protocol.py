"""Each response leaves in one write; closing still sends what was written first."""

from __future__ import annotations

import asyncio
import re
from typing import Any, cast

import pytest

from cloud.http_protocol import _TurnBufferedTransport
from cloud.server import run
from cloud.settings import ApiSettings
from tagledger.ledger.repository import Ledger
from tests.cloud.ledger_data import SHIRT, populate


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name)


def _wrap(transport: RecordingTransport) -> _TurnBufferedTransport:
    return _TurnBufferedTransport(cast(asyncio.Transport, transport), asyncio.get_running_loop())


async def test_the_writes_of_one_turn_leave_together_at_its_end() -> None:
    raw = RecordingTransport()
    buffered = _wrap(raw)
    buffered.write(b"HTTP/1.1 200 OK\r\n\r\n")
    buffered.write(bytearray(b"body"))
    assert raw.writes == []
    assert buffered.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\n\r\nbody")
    await asyncio.sleep(0)
    assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    buffered.write(b"next")
    await asyncio.sleep(0)
    assert raw.writes[1:] == [b"next"]
    assert buffered.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the transport's


async def test_close_sends_what_was_written_then_closes_and_later_writes_are_dropped() -> None:
    raw = RecordingTransport()
    buffered = _wrap(raw)
    buffered.write(b"last answer")
    buffered.close()
    assert raw.writes == [b"last answer"]
    assert raw.closed
    buffered.write(b"too late")
    await asyncio.sleep(0)
    assert raw.writes == [b"last answer"]


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
async def test_pipelined_requests_are_answered_in_order_and_the_last_before_the_close(
    ledger_url: str, ledger: Ledger
) -> None:
    await populate(ledger)
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    settings = ApiSettings(database_url=ledger_url, port=0, auth_required=False)
    server = asyncio.create_task(run(settings, ledger=ledger, on_started=started.set_result))
    try:
        host, port = (await asyncio.wait_for(started, 10)).removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        look_up = f"GET /v1/stores/paris-01/availability/{SHIRT} HTTP/1.1\r\nHost: t\r\n\r\n"
        closing = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        writer.write((look_up + "GET /v1/stores/nowhere HTTP/1.1\r\nHost: t\r\n\r\n" + closing).encode())
        answer = await asyncio.wait_for(reader.read(), 10)  # to EOF: the server closes after the third
        writer.close()
        heads = re.findall(rb"HTTP/1\.1 \d{3} [A-Za-z ]+", answer)
        assert heads == [b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found", b"HTTP/1.1 200 OK"]
        assert b'"on_hand":4' in answer
        assert answer.endswith(b'{"status":"ok"}')
    finally:
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server
