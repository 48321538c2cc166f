"""The gateway process against a real Mosquitto and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiomqtt
import asyncpg
import httpx
import pytest

from gateway.service import Gateway
from gateway.settings import GatewaySettings
from tagledger.ledger import open_ledger
from tagledger.ledger.model import ItemState
from tagledger.ledger.repository import Ledger
from tagledger.site import EXAMPLE_SITE
from tagledger.wire import (
    Ack,
    Heartbeat,
    Observation,
    ReadBatch,
    ReaderState,
    ReaderStatus,
    Topics,
    decode_as,
    encode,
)

pytestmark = pytest.mark.integration

STORE = "paris-01"
READER = "paris-01-r1"  # antennas 1, 2 -> floor; 3 -> fitting
EPCS = [f"30340BB8C0{i:014X}" for i in range(5)]


def _recent_t0() -> int:
    """Event times of a test: a minute before it runs, whole seconds.

    The gateway's silence timers run on the wall clock: an item read days ago
    goes `missing` at the first tick after its batch, so an assertion on its
    state would depend on whether that tick came first.  Taken when the test
    runs, not at import: a worker imports every module long before the last
    of its tests runs.
    """
    return (time.time_ns() // 1_000_000_000 - 60) * 1_000_000


def _batch(
    t0: int, seq: int, epcs: list[str], *, reader: str = READER, antenna: int = 1, boot: str = "boot-a"
) -> ReadBatch:
    start = t0 + seq * 1_000_000
    return ReadBatch(
        store_id=STORE,
        reader_id=reader,
        boot_id=boot,
        seq=seq,
        sent_at_us=start + 1_000_000,
        observations=[
            Observation(
                epc=epc,
                antenna=antenna,
                first_seen_us=start,
                last_seen_us=start + 900_000,
                count=10,
                peak_rssi=-50.0,
                mean_rssi=-53.0,
            )
            for epc in epcs
        ],
    )


@dataclass
class Running:
    gateway: Gateway
    topics: Topics
    client: aiomqtt.Client
    ledger: Ledger
    replies: asyncio.Queue[tuple[str, bytes]]
    task: asyncio.Task[None]
    t0: int  # the test's event times start here (_recent_t0)

    def batch(self, seq: int, epcs: list[str], **kw: Any) -> ReadBatch:
        return _batch(self.t0, seq, epcs, **kw)

    async def publish(self, topic: str, payload: bytes) -> None:
        await self.client.publish(topic, payload, qos=1)

    async def reply(self, timeout: float = 10) -> tuple[str, bytes]:  # noqa: ASYNC109
        return await asyncio.wait_for(self.replies.get(), timeout)

    async def ack(self) -> Ack:
        topic, payload = await self.reply()
        assert topic == self.topics.ack(STORE, READER), topic
        return decode_as(Ack, payload)


@pytest.fixture
async def running(pg_url: str, mqtt: tuple[str, int], topic_root: str) -> AsyncIterator[Running]:
    host, port = mqtt
    settings = GatewaySettings(
        site=EXAMPLE_SITE,
        database_url=pg_url,
        mqtt_url=f"mqtt://{host}:{port}",
        topic_root=topic_root,
        client_id=f"gw-{uuid.uuid4().hex[:8]}",
        health_port=0,
    )
    gateway = Gateway(settings)
    task = asyncio.create_task(gateway.run(), name="gateway-under-test")
    ledger: Ledger | None = None  # opened once the gateway has migrated the database
    try:
        await asyncio.wait_for(gateway.ready.wait(), 20)
        ledger = await open_ledger(pg_url)
        topics = Topics(topic_root)
        replies: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        async with aiomqtt.Client(host, port, identifier=f"test-{uuid.uuid4().hex[:8]}") as client:
            await client.subscribe(f"{topics.base}/+/+/ack", qos=1)
            await client.subscribe(f"{topics.base}/_deadletter/#", qos=1)

            async def pump() -> None:
                async for m in client.messages:
                    replies.put_nowait((m.topic.value, bytes(m.payload)))  # type: ignore[arg-type]

            pumping = asyncio.create_task(pump(), name="test-replies")
            try:
                yield Running(gateway, topics, client, ledger, replies, task, _recent_t0())
            finally:
                pumping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pumping
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if ledger is not None:
            await ledger.close()


async def test_batch_is_committed_then_acked_and_items_appear(running: Running) -> None:
    await running.publish(running.topics.reads(STORE, READER), encode(running.batch(0, EPCS)))
    ack = await running.ack()
    assert (ack.boot_id, ack.seq, ack.result) == ("boot-a", 0, "committed")
    # The ack came after the commit: the ledger already holds the batch and the items.
    assert await running.ledger.batch_count() == 1
    items = {i.epc: i for i in await running.ledger.load_items(STORE)}
    assert set(items) == set(EPCS)
    assert {(i.state, i.zone) for i in items.values()} == {(ItemState.PRESENT, "floor")}
    history = await running.ledger.item_history(EPCS[0])
    assert history[0].transition.batch is not None
    assert history[0].transition.batch.seq == 0


async def test_a_cancelled_gateway_commits_and_acks_what_it_prepared_then_re_raises(
    running: Running, pg_url: str
) -> None:
    """Shutdown drains: a group whose commit is under way when the gateway is cancelled is committed and acked."""
    blocker = await asyncpg.connect(pg_url)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE batches IN EXCLUSIVE MODE")  # its writes wait, reads go on
        await running.publish(running.topics.reads(STORE, READER), encode(running.batch(0, EPCS)))
        groups = running.gateway.groups
        assert groups is not None
        async with asyncio.timeout(10):
            while not groups.committing:  # noqa: ASYNC110  (nothing signals a commit's start)
                await asyncio.sleep(0.02)
        running.task.cancel()  # prepared; its commit waits for the lock
        await asyncio.sleep(0.5)
        assert not running.task.done()  # draining
        await tx.rollback()
        with pytest.raises(asyncio.CancelledError):
            await running.task
    finally:
        await blocker.close()
    ack = await running.ack()
    assert (ack.seq, ack.result) == (0, "committed")
    assert await running.ledger.batch_count() == 1


async def test_redelivered_batch_is_recognised_and_adds_nothing(running: Running) -> None:
    payload = encode(running.batch(0, EPCS))
    await running.publish(running.topics.reads(STORE, READER), payload)
    assert (await running.ack()).result == "committed"
    before = [len(await running.ledger.item_history(e)) for e in EPCS]
    await running.publish(running.topics.reads(STORE, READER), payload)
    assert (await running.ack()).result == "duplicate"
    assert await running.ledger.batch_count() == 1
    assert [len(await running.ledger.item_history(e)) for e in EPCS] == before


async def test_each_bad_input_goes_to_the_dead_letter_and_ingestion_goes_on(running: Running) -> None:
    topics, batch = running.topics, running.batch
    good = batch(0, EPCS)
    cases: list[tuple[str, bytes, str]] = [
        (topics.reads(STORE, READER), b"{this is not json", "malformed"),
        (topics.reads(STORE, READER), json.dumps({"v": 9, "kind": "reads"}).encode(), "unknown_version"),
        (topics.reads(STORE, READER), json.dumps({"v": 1, "kind": "reads", "store_id": STORE}).encode(), "invalid"),
        (topics.reads(STORE, READER), b"[" + b"1," * 2_200_000 + b"1]", "oversized"),
        (
            topics.reads(STORE, "no-such-reader"),
            encode(batch(1, EPCS, reader="no-such-reader")),
            "unknown_reader",
        ),
        (topics.reads("no-such-store", READER), encode(good), "unknown_store"),
        (topics.reads(STORE, READER), encode(batch(2, EPCS, antenna=7)), "unknown_antenna"),
    ]
    for topic, payload, _ in cases:
        await running.publish(topic, payload)
    letters: dict[str, dict[str, object]] = {}
    acks: list[Ack] = []
    while len(letters) < len(cases):
        topic, payload = await running.reply()
        if topic.endswith("/ack"):
            acks.append(decode_as(Ack, payload))
        else:
            letter = json.loads(payload)
            letters[str(letter["reason"])] = letter
    assert set(letters) == {reason for _, _, reason in cases}
    assert letters["malformed"]["payload_b64"]
    assert letters["oversized"]["payload_truncated"] is True
    # A batch that parsed but can never be ingested is acked as rejected, so the
    # agent stops re-sending it; it is kept in the rejects table.
    rejects = await running.ledger.rejects(limit=50)
    assert sorted(r.reason for r in rejects) == sorted(reason for _, _, reason in cases)
    # ... and the gateway is still ingesting.
    await running.publish(topics.reads(STORE, READER), encode(good))
    while True:
        topic, payload = await running.reply()
        if topic.endswith("/ack") and decode_as(Ack, payload).seq == 0:
            assert decode_as(Ack, payload).result == "committed"
            break
    assert await running.ledger.batch_count() == 1
    counter = running.gateway.metrics.rejects
    assert counter.labels("malformed")._value.get() == 1


async def test_health_endpoints_and_metrics(running: Running) -> None:
    assert running.gateway.metrics.last_commit._value.get() == 0  # no commit yet
    before = time.time()
    await running.publish(running.topics.reads(STORE, READER), encode(running.batch(0, EPCS)))
    await running.ack()
    port = running.gateway.health_port
    assert port
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).status_code == 200
        metrics = (await http.get("/metrics")).text
        assert 'tagledger_batches_total{result="committed"} 1.0' in metrics
        assert "tagledger_observations_total 5.0" in metrics
        (last,) = re.findall(r"^tagledger_last_commit_timestamp_seconds (\S+)$", metrics, re.MULTILINE)
        assert before <= float(last) <= time.time()
        assert (await http.get("/nope")).status_code == 404


async def test_heartbeats_and_statuses_keep_each_antennas_rate_and_down_flag(running: Running) -> None:
    topics, t0 = running.topics, running.t0
    beat = Heartbeat(
        store_id=STORE, reader_id=READER, boot_id="boot-a", at_us=t0, reader_connected=True,
        reads_per_s={"1": 120.5, "2": 80.0, "3": 0.0},
    )  # fmt: skip
    status = ReaderStatus(store_id=STORE, reader_id=READER, state=ReaderState.ONLINE, at_us=t0, antennas_down=[3])
    older = Heartbeat(
        store_id=STORE, reader_id=READER, boot_id="boot-a", at_us=t0 - 10, reader_connected=True,
        reads_per_s={"1": 1.0},
    )  # fmt: skip
    await running.publish(topics.heartbeat(STORE, READER), encode(beat))
    await running.publish(topics.status(STORE, READER), encode(status))
    await running.publish(topics.heartbeat(STORE, READER), encode(older))
    await running.publish(topics.heartbeat(STORE, READER), b"{not json")
    letter = json.loads((await running.reply())[1])
    assert letter["reason"] == "malformed"
    sql = (
        "SELECT port, reads_per_s, heartbeat_us, down, status_us FROM antenna_health WHERE reader_id = $1 ORDER BY port"
    )
    rows = await running.ledger.fetch(sql, READER)
    # The older heartbeat came last and changed nothing; the status marked port 3 down, 1 and 2 up.
    assert rows == [(1, 120.5, t0, 0, t0), (2, 80.0, t0, 0, t0), (3, 0.0, t0, 1, t0)]
