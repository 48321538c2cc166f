"""The MQTT publisher against the real Mosquitto: gateway acks, bounded in-flight, outages, status."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge.publisher import Publisher
from edge.spool import BatchDraft, Spool
from tagledger.app.faults import TcpProxy
from tagledger.clock import SystemClock
from tagledger.wire import Observation, ReaderState, ReaderStatus, Topics, decode_as

from .agent_support import READER, STORE, collect, edge_settings, eventually, forget_session

pytestmark = pytest.mark.integration

T0 = 1_795_000_000_000_000


def draft(i: int) -> BatchDraft:
    o = Observation(
        epc=f"3034257BF7194E40{i:08X}",
        antenna=1,
        first_seen_us=T0 + i,
        last_seen_us=T0 + i,
        count=1,
        peak_rssi=-50,
        mean_rssi=-50,
    )
    return BatchDraft(observations=[o], gaps=[], sent_at_us=T0 + i)


class Rig:
    def __init__(self, spool: Spool, publisher: Publisher, topics: Topics) -> None:
        self.spool = spool
        self.publisher = publisher
        self.reads = topics.reads(STORE, READER)
        self.status = topics.status(STORE, READER)
        self.ack = topics.ack(STORE, READER)

    async def append(self, n: int, start: int = 0) -> None:
        for i in range(start, start + n):
            await self.spool.append(draft(i))
        self.publisher.wake()


@pytest.fixture
async def proxy(mqtt: tuple[str, int]) -> AsyncIterator[TcpProxy]:
    async with TcpProxy(*mqtt) as p:
        yield p


def _rig_factory(tmp_path: Path, mqtt: tuple[str, int], topic_root: str) -> Any:
    @contextlib.asynccontextmanager
    async def rig(broker: tuple[str, int] | None = None, **overrides: Any) -> AsyncIterator[Rig]:
        settings = edge_settings(tmp_path, broker or mqtt, topic_root, **overrides)
        topics = Topics(topic_root)
        try:
            async with Spool.open(settings.effective_spool_path(), store_id=STORE, reader_id=READER) as spool:
                publisher = Publisher(settings, store_id=STORE, spool=spool, clock=SystemClock())
                task = asyncio.create_task(publisher.run(), name="test.publisher")
                try:
                    yield Rig(spool, publisher, topics)
                finally:
                    await publisher.stop()
                    await task
        finally:
            await forget_session(mqtt, settings.effective_client_id(), topics.status(STORE, READER))

    return rig


@pytest.fixture
def rig(tmp_path: Path, mqtt: tuple[str, int], topic_root: str) -> Any:
    return _rig_factory(tmp_path, mqtt, topic_root)


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_batches_leave_the_spool_only_on_a_gateway_ack(
    rig: Any, mqtt: tuple[str, int], topic_root: str, protocol: str
) -> None:
    async with collect(mqtt, f"{topic_root}/#") as sub, rig(mqtt_protocol=protocol) as r:
        await r.append(3)
        await sub.wait_for(lambda: len(sub.on(r.reads)) == 3)
        batches = sub.batches(r.reads)
        assert [b.seq for b in batches] == [0, 1, 2]
        assert {b.boot_id for b in batches} == {r.spool.boot_id}
        # The broker has them (PUBACK), yet nothing leaves the spool without the gateway.
        await asyncio.sleep(0.2)
        assert r.spool.depth == 3
        # An ack for another boot of this reader deletes nothing.
        stale = batches[0].model_copy(update={"boot_id": "0000000000000000"})
        await sub.ack(r.ack, stale)
        await sub.ack(r.ack, batches[0], "committed")
        await sub.ack(r.ack, batches[1], "duplicate")
        await eventually(lambda: r.spool.depth == 1)
        await sub.ack(r.ack, batches[2], "rejected")
        await eventually(lambda: r.spool.depth == 0)
        assert r.publisher.acked == 3
        assert r.publisher.in_flight == 0
        # Nagle off: a batch written right after another leaves at once.
        sock = r.publisher._client._client.socket()
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


async def test_in_flight_is_bounded_and_unconfirmed_batches_are_sent_again(
    rig: Any, mqtt: tuple[str, int], topic_root: str
) -> None:
    async with collect(mqtt, f"{topic_root}/#") as sub, rig(max_in_flight=2, ack_timeout_s=0.6) as r:
        await r.append(5)
        await sub.wait_for(lambda: len(sub.on(r.reads)) >= 2)
        await asyncio.sleep(0.2)
        assert [b.seq for b in sub.batches(r.reads)] == [0, 1]  # no more than 2 await the gateway
        await sub.ack(r.ack, sub.batches(r.reads)[0])
        await sub.wait_for(lambda: len(sub.on(r.reads)) >= 3)
        assert sub.batches(r.reads)[2].seq == 2
        # Nobody acks 1 and 2: after the ack timeout they go out again, byte-identical.
        await sub.wait_for(lambda: len(sub.on(r.reads)) >= 5, within=3)
        payloads = sub.on(r.reads)
        assert sorted(b.seq for b in sub.batches(r.reads)[3:5]) == [1, 2]
        assert payloads[1] in payloads[3:5]
        await eventually(lambda: r.publisher.resent >= 2)  # counted on PUBACK, which may trail delivery
        assert r.spool.depth == 4


async def test_a_batch_the_gateway_asks_for_goes_again_at_once_and_stays_spooled(
    rig: Any, mqtt: tuple[str, int], topic_root: str
) -> None:
    async with collect(mqtt, f"{topic_root}/#") as sub, rig(ack_timeout_s=60) as r:
        await r.append(3)
        await sub.wait_for(lambda: len(sub.on(r.reads)) == 3)
        batches = sub.batches(r.reads)
        await sub.ack(r.ack, batches[1], result="resend")
        await sub.wait_for(lambda: len(sub.on(r.reads)) == 4, within=3)  # long before the 60 s timeout
        assert sub.on(r.reads)[3] == sub.on(r.reads)[1]  # the same bytes again
        await eventually(lambda: r.publisher.resent == 1)
        assert r.spool.depth == 3  # asked for is not acknowledged
        # Asked for again once committed, or for a batch never sent: nothing goes out.
        await sub.ack(r.ack, batches[1])
        await eventually(lambda: r.spool.depth == 2)
        await sub.ack(r.ack, batches[1], result="resend")
        await sub.ack(r.ack, batches[2].model_copy(update={"seq": 99}), result="resend")
        await asyncio.sleep(0.3)
        assert len(sub.on(r.reads)) == 4


async def test_broker_outage_spools_then_delivers_everything(
    rig: Any, mqtt: tuple[str, int], topic_root: str, proxy: TcpProxy
) -> None:
    async with collect(mqtt, f"{topic_root}/#") as sub, rig(broker=("127.0.0.1", proxy.port)) as r:
        await r.append(2)
        await sub.wait_for(lambda: len(sub.on(r.reads)) == 2)
        first = sub.batches(r.reads)
        await proxy.stop()  # the store's uplink goes away
        await eventually(lambda: not r.publisher.connected)
        # The gateway committed batch 0 meanwhile; its ack waits in the agent's persistent session.
        await sub.ack(r.ack, first[0])
        await r.append(5, start=2)
        await asyncio.sleep(0.3)
        assert r.spool.depth == 7
        assert len(sub.on(r.reads)) == 2
        await proxy.start()
        await sub.wait_for(lambda: {b.seq for b in sub.batches(r.reads)} == set(range(7)))
        await eventually(lambda: r.spool.depth == 6)  # the queued ack arrived after reconnecting
        assert r.publisher.connects == 2
        for b in sub.batches(r.reads):
            await sub.ack(r.ack, b)
        await eventually(lambda: r.spool.depth == 0)


async def test_status_is_retained_online_and_offline_with_a_last_will(
    rig: Any, mqtt: tuple[str, int], topic_root: str, proxy: TcpProxy
) -> None:
    async def retained_status() -> ReaderStatus:
        async with collect(mqtt, Topics(topic_root).status(STORE, READER)) as late:
            await late.wait_for(lambda: late.messages)
            assert late.messages[0].retain
            return decode_as(ReaderStatus, bytes(late.messages[0].payload))  # type: ignore[arg-type]

    async with rig(broker=("127.0.0.1", proxy.port)) as r:
        await eventually(lambda: r.publisher.connected)
        await r.publisher.set_status(ReaderState.ONLINE)
        status = await retained_status()
        assert (status.state, status.boot_id, status.reader_id) == (ReaderState.ONLINE, r.spool.boot_id, READER)

        # Abrupt loss (no DISCONNECT): the broker publishes the retained will.
        await proxy.stop()
        await eventually(lambda: not r.publisher.connected)
        will = await _wait_state(retained_status, ReaderState.OFFLINE)
        assert will.detail == "connection lost"

        await proxy.start()
        back = await _wait_state(retained_status, ReaderState.ONLINE)
        assert back.boot_id == r.spool.boot_id

        # Graceful stop: the agent says offline itself, then disconnects.
        await r.publisher.stop()
        assert not r.publisher.connected
        status = await retained_status()
        assert (status.state, status.detail) == (ReaderState.OFFLINE, "agent stopped")


async def _wait_state(get: Any, state: ReaderState, within: float = 5.0) -> ReaderStatus:
    async with asyncio.timeout(within):
        while True:
            status: ReaderStatus = await get()
            if status.state == state:
                return status
            await asyncio.sleep(0.05)
