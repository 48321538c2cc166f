"""Read batches that reach the gateway out of seq order, against a real Mosquitto and PostgreSQL.

The gateway runs in-process; batches are published in a chosen order on one
connection, so the broker delivers them in exactly that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiomqtt
import pytest

from gateway.service import Gateway
from gateway.settings import GatewaySettings
from tagledger.site import EXAMPLE_SITE
from tagledger.wire import Ack, Observation, ReadBatch, Topics, decode_as, encode
from tests.gateway.ledger_kit import other_database, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STORE = "paris-01"
R1 = "paris-01-r1"  # antennas 1, 2 -> floor; 3 -> fitting
R2 = "paris-01-r2"  # antennas 1, 2 -> backroom


class _Events:
    """Where each test's event times start (set by ``_recent_event_times``)."""

    t0 = 0


@pytest.fixture(autouse=True)
def _recent_event_times() -> None:
    # A minute before the test runs, whole seconds: the gateway's silence timers run
    # on the wall clock, and reads from days ago would be minutes-to-hours silent at the
    # first tick (items going `missing` in one run and not in the other, by timing).
    # Taken per test, not at import: a worker imports every module minutes before the
    # last of its tests runs, and reads 3 minutes old can already be `missing`.
    _Events.t0 = (time.time_ns() // 1_000_000_000 - 60) * 1_000_000


def _epc(i: int) -> str:
    return f"30340BB8C0{i:014X}"


def _batch(seq: int, reader: str = R1) -> ReadBatch:
    """Five new items read strongly (admitted at once), and the previous batch's items again.

    So an item's creation cites the batch it was first read in only if that
    batch is processed before the next one.
    """
    t = _Events.t0 + seq * 1_000_000
    base = 0 if reader == R1 else 1_000

    def obs(i: int, count: int, rssi: float) -> Observation:
        return Observation(
            epc=_epc(base + i),
            antenna=1 + i % 2,
            first_seen_us=t - 500_000,
            last_seen_us=t,
            count=count,
            peak_rssi=rssi,
            mean_rssi=rssi,
        )

    observations = [obs(seq * 5 + k, 3, -35.0) for k in range(5)]
    if seq:
        observations += [obs((seq - 1) * 5 + k, 2, -52.0) for k in range(5)]
    return ReadBatch(store_id=STORE, reader_id=reader, boot_id="b1", seq=seq, sent_at_us=t, observations=observations)


@contextlib.asynccontextmanager
async def _gateway(
    db: str, mqtt: tuple[str, int], root: str, reorder_wait_s: float, client_id: str | None = None
) -> AsyncIterator[Gateway]:
    host, port = mqtt
    settings = GatewaySettings(
        site=EXAMPLE_SITE,
        database_url=db,
        mqtt_url=f"mqtt://{host}:{port}",
        topic_root=root,
        client_id=client_id or f"gw-{root}",
        health_port=None,
        reorder_wait_s=reorder_wait_s,
    )
    gateway = Gateway(settings)
    task = asyncio.create_task(gateway.run(), name="gateway-under-test")
    try:
        await asyncio.wait_for(gateway.ready.wait(), 20)
        yield gateway
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Agent:
    """Publishes batches in a given order on one connection; records when each ack came."""

    def __init__(self, client: aiomqtt.Client, topics: Topics) -> None:
        self.client, self.topics = client, topics
        self.acks: dict[tuple[str, int], tuple[str, float]] = {}  # (reader, seq) -> (result, monotonic time)
        self.asked: list[tuple[str, int]] = []  # (reader, seq) of every "resend" request, in arrival order
        self._arrived = asyncio.Event()

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, mqtt: tuple[str, int], root: str) -> AsyncIterator[Agent]:
        topics = Topics(root)
        async with aiomqtt.Client(*mqtt, identifier=f"agent-{uuid.uuid4().hex[:8]}") as client:
            await client.subscribe(f"{topics.base}/+/+/ack", qos=1)
            agent = cls(client, topics)
            task = asyncio.create_task(agent._listen(), name="agent-acks")
            try:
                yield agent
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _listen(self) -> None:
        async for m in self.client.messages:
            ack = decode_as(Ack, m.payload if isinstance(m.payload, bytes) else b"")
            if ack.result == "resend":
                self.asked.append((ack.reader_id, ack.seq))
            else:
                self.acks.setdefault((ack.reader_id, ack.seq), (ack.result, time.monotonic()))
            self._arrived.set()

    async def publish(self, *batches: ReadBatch) -> float:
        for b in batches:
            await self.client.publish(self.topics.reads(b.store_id, b.reader_id), encode(b), qos=1)
        return time.monotonic()

    async def acked(self, *keys: tuple[str, int], limit_s: float = 20) -> None:
        async with asyncio.timeout(limit_s):
            while not all(k in self.acks for k in keys):
                self._arrived.clear()
                await self._arrived.wait()

    async def asked_for(self, *keys: tuple[str, int], limit_s: float = 5) -> None:
        async with asyncio.timeout(limit_s):
            while not all(k in self.asked for k in keys):
                self._arrived.clear()
                await self._arrived.wait()


async def _ingest(db: str, mqtt: tuple[str, int], root: str, seqs: Sequence[int], wait_s: float) -> dict[str, Any]:
    async with _gateway(db, mqtt, root, wait_s) as gateway, Agent.connect(mqtt, root) as agent:
        await agent.publish(*(_batch(s) for s in seqs))
        await agent.acked(*((R1, s) for s in seqs))
        assert {result for result, _ in agent.acks.values()} == {"committed"}
        held = {
            outcome: gateway.metrics.held_batches.labels(outcome)._value.get()
            for outcome in ("in_order", "waited_out", "buffer_full")
        }
        await asyncio.sleep(0.5)  # the PUBACKs follow the acks: let them reach the broker before we stop
    await _nothing_redelivered(db, mqtt, root)
    return {"ledger": await snapshot(db), "held": held}


async def _nothing_redelivered(db: str, mqtt: tuple[str, int], root: str) -> None:
    """Every message got its PUBACK (held ones too, after their commit): the session has nothing to redeliver.

    A message left without one would come again when the gateway's persistent
    session resumes, before anything else.
    """
    async with _gateway(db, mqtt, root, 30) as again:
        await asyncio.sleep(1.0)
        assert again.metrics.batches.labels("duplicate")._value.get() == 0


async def test_batches_published_out_of_order_leave_the_ledger_in_order_ones_leave(
    pg_url: str, mqtt: tuple[str, int], topic_root: str
) -> None:
    shuffled = [0, 2, 1, 3, 5, 4, 7, 6]  # N+1 before N, three times
    async with other_database(pg_url, "inorder") as ref, other_database(pg_url, "nowait") as control:
        want = await _ingest(ref, mqtt, f"{topic_root}-a", range(8), wait_s=30)
        got = await _ingest(pg_url, mqtt, f"{topic_root}-b", shuffled, wait_s=30)
        unordered = await _ingest(control, mqtt, f"{topic_root}-c", shuffled, wait_s=0)
    assert want["held"] == {"in_order": 0, "waited_out": 0, "buffer_full": 0}
    assert got["held"] == {"in_order": 3, "waited_out": 0, "buffer_full": 0}
    assert len(got["ledger"]["batches"]) == 8
    assert len(got["ledger"]["items"]) == 40
    assert got["ledger"] == want["ledger"]
    # The control: processed as they came, items of batch 1 are created citing batch 2.
    created = {e[1]: e[10] for e in unordered["ledger"]["events"] if e[3] is None}
    assert created[_epc(5)] == 2
    assert unordered["ledger"]["events"] != want["ledger"]["events"]
    assert unordered["ledger"]["stock"] == want["ledger"]["stock"]  # the same stock, another trail


async def test_a_hole_that_never_fills_holds_its_successor_only_for_the_wait(
    pg_url: str, mqtt: tuple[str, int], topic_root: str
) -> None:
    async with _gateway(pg_url, mqtt, topic_root, reorder_wait_s=0.5) as gateway, Agent.connect(mqtt, topic_root) as a:
        await a.publish(_batch(0))
        await a.acked((R1, 0))
        sent = await a.publish(_batch(2))  # seq 1 is lost
        await asyncio.sleep(0.3)
        assert (R1, 2) not in a.acks  # held: not committed, so not acknowledged
        await a.acked((R1, 2))
        assert a.acks[(R1, 2)][1] - sent >= 0.5
        m = gateway.metrics
        assert m.skipped_seqs._value.get() == 1
        assert m.held_batches.labels("waited_out")._value.get() == 1
        assert m.held_now._value.get() == 0
        await a.publish(_batch(1))  # late after all: committed, as late evidence
        await a.acked((R1, 1))
        assert a.acks[(R1, 1)][0] == "committed"
        await asyncio.sleep(0.5)  # the PUBACKs follow the acks: let them reach the broker before we stop
    await _nothing_redelivered(pg_url, mqtt, topic_root)
    ledger = await snapshot(pg_url)
    assert [b[2] for b in ledger["batches"]] == [0, 1, 2]
    created = {e[1]: e[10] for e in ledger["events"] if e[3] is None}
    assert created[_epc(5)] == 2  # batch 1's items were first seen, for the ledger, in batch 2


async def test_the_gateway_asks_the_agent_for_a_missing_batch_at_once(
    pg_url: str, mqtt: tuple[str, int], topic_root: str
) -> None:
    # A long wait: the hole fills because the gateway asked, not because the hold ran out.
    async with _gateway(pg_url, mqtt, topic_root, reorder_wait_s=30) as gateway, Agent.connect(mqtt, topic_root) as a:
        await a.publish(_batch(0))
        await a.acked((R1, 0))
        sent = await a.publish(_batch(3))  # 1 and 2 went out before this gateway listened
        await a.asked_for((R1, 1), (R1, 2))
        assert time.monotonic() - sent < 2.0
        assert (R1, 3) not in a.acks  # held until its predecessors are in
        await a.publish(_batch(4))  # behind the same hole: nothing asked twice
        await a.publish(_batch(1), _batch(2))  # what an agent does when asked
        await a.acked((R1, 1), (R1, 2), (R1, 3), (R1, 4))
        assert a.asked == [(R1, 1), (R1, 2)]
        assert {a.acks[(R1, s)][0] for s in range(5)} == {"committed"}
        m = gateway.metrics
        assert m.resend_requests._value.get() == 2
        assert m.held_batches.labels("in_order")._value.get() == 2
        assert m.skipped_seqs._value.get() == 0
        await asyncio.sleep(0.5)  # the PUBACKs follow the acks: let them reach the broker before we stop
    ledger = await snapshot(pg_url)
    assert [b[2] for b in ledger["batches"]] == [0, 1, 2, 3, 4]
    created = {e[1]: e[10] for e in ledger["events"] if e[3] is None}
    assert created[_epc(5)] == 1  # batch 1's items cite batch 1: the trail of an in-order run
    assert created[_epc(10)] == 2


async def test_a_hole_in_one_reader_s_stream_does_not_delay_another_reader(
    pg_url: str, mqtt: tuple[str, int], topic_root: str
) -> None:
    async with _gateway(pg_url, mqtt, topic_root, reorder_wait_s=30) as gateway, Agent.connect(mqtt, topic_root) as a:
        await a.publish(_batch(1, R1))  # waits for R1's seq 0
        await a.publish(_batch(0, R2), _batch(1, R2))
        await a.acked((R2, 0), (R2, 1), limit_s=5)
        assert (R1, 1) not in a.acks
        assert gateway.metrics.held_now._value.get() == 1
        await a.publish(_batch(0, R1))
        await a.acked((R1, 0), (R1, 1), limit_s=5)
        assert gateway.metrics.held_batches.labels("in_order")._value.get() == 1
    ledger = await snapshot(pg_url)
    created = {e[1]: e[10] for e in ledger["events"] if e[3] is None}
    assert created[_epc(0)] == 0
    assert created[_epc(5)] == 1
