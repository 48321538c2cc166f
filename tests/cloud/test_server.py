"""run(): the API served over real TCP by uvicorn, stopped gracefully by cancellation."""

from __future__ import annotations

import asyncio
import gc
import socket

import httpx
import pytest

from cloud.server import run
from cloud.settings import ApiSettings
from tagledger.ledger.repository import Ledger
from tests.cloud.ledger_data import SHIRT, populate


async def test_run_serves_over_tcp_and_stops_when_cancelled(ledger_url: str, ledger: Ledger) -> None:
    await populate(ledger)
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    settings = ApiSettings(database_url=ledger_url, port=0, auth_required=False)  # the example site; any free port
    server = asyncio.create_task(run(settings, on_started=started.set_result), name="api-under-test")
    try:
        url = await asyncio.wait_for(started, 10)
        assert url.startswith("http://127.0.0.1:")
        # What exists once the app is up is out of the collector's full passes.
        assert gc.get_freeze_count() > 10_000
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/readyz")).status_code == 200
            r = await http.get(f"/v1/stores/paris-01/availability/{SHIRT}")
            assert r.status_code == 200
            assert r.json()["on_hand"] == 4
    finally:
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server
    with pytest.raises(httpx.ConnectError):  # the socket is closed
        async with httpx.AsyncClient(base_url=url) as http:
            await http.get("/healthz")


async def test_run_fails_fast_on_a_bad_ledger_url() -> None:
    with pytest.raises(ValueError, match="unsupported ledger URL"):
        await run(ApiSettings(database_url="mysql://nowhere/db", port=0))


async def test_a_port_in_use_is_an_os_error_not_an_exit(ledger_url: str, ledger: Ledger) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="in use"):
            await run(ApiSettings(database_url=ledger_url, port=port), ledger=ledger)


def test_the_listening_socket_says_tcp_so_connections_get_nodelay() -> None:
    # asyncio turns on TCP_NODELAY for accepted sockets only when the listener's proto is
    # IPPROTO_TCP; with proto 0 every keep-alive response waited ~40 ms for a delayed ACK.
    from cloud.server import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        sock.listen()
        with socket.create_connection(sock.getsockname()) as client:
            accepted, _ = sock.accept()
            with accepted:
                assert accepted.proto == socket.IPPROTO_TCP
                assert client.getsockname() == accepted.getpeername()
    finally:
        sock.close()


def test_tagledger_api_serves_on_uvloop_where_installed() -> None:
    uvloop = pytest.importorskip("uvloop")
    from cloud.server import loop_factory

    assert loop_factory() is uvloop.new_event_loop


def test_connections_accepted_by_the_serving_loop_get_nodelay() -> None:
    # What the test above checks for asyncio's loop, for the loop `tagledger api` really
    # uses (uvloop): without TCP_NODELAY a write that follows another unacknowledged one
    # (the chunks of a change stream) waits for the client's delayed ACK.
    from cloud.server import _bind, loop_factory

    async def serve_one() -> int:
        loop = asyncio.get_running_loop()
        nodelay: asyncio.Future[int] = loop.create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                nodelay.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        sock = _bind("127.0.0.1", 0)
        server = await loop.create_server(Probe, sock=sock)
        try:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            try:
                return await asyncio.wait_for(nodelay, 5)
            finally:
                writer.close()
        finally:
            server.close()
            await server.wait_closed()

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        assert runner.run(serve_one()) != 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_metrics_on_a_port_of_their_own(ledger_url: str, ledger: Ledger) -> None:
    # Issue 11: /metrics can be kept off the API's address (a scraper network apart).
    metrics_port = _free_port()
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    settings = ApiSettings(database_url=ledger_url, port=0, auth_required=False, metrics_port=metrics_port)
    server = asyncio.create_task(run(settings, on_started=started.set_result), name="api-under-test")
    try:
        url = await asyncio.wait_for(started, 10)
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{url}/healthz")).status_code == 200
            assert (await http.get(f"{url}/metrics")).status_code == 404
            scraped = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert scraped.status_code == 200
            assert 'tagledger_api_requests_total{method="GET",route="/healthz",status="200"} 1.0' in scraped.text
    finally:
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
