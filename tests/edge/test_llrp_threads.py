"""sllurp's threads cannot keep the agent alive after a stop (edge.llrp_threads).

Seen under load: the socket thread of a connection the agent had dropped stayed
in ``select()`` for good, and the agent, its reader refusing connections, did
not exit on SIGTERM, because the interpreter waits for every non-daemon thread.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from edge.llrp import LlrpReader
from edge.llrp_threads import off_loop, shut_down
from edge.profile import ReaderProfile
from tagledger.app.sim.runner import SimSettings, Simulation

PROFILE = ReaderProfile(name="test", role="sales_floor", report_every_n_tags=500, report_timeout_ms=100)


class _Client:
    """What shut_down needs of sllurp's client: its connection's socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        ours = socket.create_connection(server.getsockname(), timeout=5)
        theirs, _ = server.accept()
        with ours, theirs:
            yield ours, theirs


def test_a_socket_shut_down_before_the_thread_selects_still_wakes_it(
    connection: tuple[socket.socket, socket.socket],
) -> None:
    # The race hard_disconnect loses: the socket thread calls select() only after
    # the socket was dealt with.  Shut down (not closed), it returns at once.
    ours, _ = connection
    shut_down(_Client(ours))
    assert ours.fileno() != -1  # not closed: no descriptor number to be reused under the thread
    readable, _, _ = select.select([ours], [], [], 5)
    assert readable == [ours]
    assert ours.recv(4096) == b""  # end of stream: sllurp's thread ends its loop on this


def test_shut_down_wakes_a_thread_already_in_select(connection: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = connection
    woke = threading.Event()

    def socket_thread() -> None:
        select.select([ours], [], [])
        woke.set()

    t = threading.Thread(target=socket_thread, daemon=True)
    t.start()
    assert not woke.wait(0.2)  # the peer sends nothing: it waits
    shut_down(_Client(ours))
    assert woke.wait(10)


async def test_off_loop_returns_results_and_errors_from_a_daemon_thread() -> None:
    seen: list[bool] = []

    def work(x: int) -> int:
        seen.append(threading.current_thread().daemon)
        return x * 2

    assert await off_loop(work, 21, name="test-off-loop") == 42
    assert seen == [True]
    with pytest.raises(ConnectionRefusedError):
        await off_loop(_refuse, name="test-off-loop")


def _refuse() -> None:
    raise ConnectionRefusedError("refused")


@pytest.fixture
async def sim() -> AsyncIterator[Simulation]:
    settings = SimSettings(
        seed=3, items=50, events_per_minute=0, reads_per_s=500, any_port=True, listen_host="127.0.0.1"
    )
    async with Simulation(settings) as s:
        yield s


def _sllurp_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sllurp-reader")]


async def test_sllurps_socket_threads_are_daemons_and_end_with_their_connections(sim: Simulation) -> None:
    reader_id = "paris-01-r1"
    host, port = sim.address(reader_id)
    ports = [a.port for a in sim.store.reader(reader_id).antennas]
    reader = LlrpReader(host, port, PROFILE, ports, keepalive_s=1.0, backoff_initial_s=0.05, backoff_max_s=0.2)
    before = set(_sllurp_threads())  # another test's, if any
    async with reader:

        async def connected() -> None:
            async for ev in reader.events():
                if ev.kind == "connected":
                    return

        await asyncio.wait_for(connected(), 20)
        live = [t for t in _sllurp_threads() if t not in before]
        assert live
        assert all(t.daemon for t in live)  # none can hold the process at exit
        sim.endpoints[reader_id].drop_connection()
        await asyncio.sleep(0.5)
    # Every connection's thread ended: the dropped one, and the one stop() closed.
    for t in live:
        t.join(10)
    assert not any(t.is_alive() for t in live)
    assert not [t for t in _sllurp_threads() if t not in before and t.is_alive()]
