"""Helpers for the agent's integration tests: settings, a subscriber, the gateway's side of acks."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import yaml

from edge.settings import EdgeSettings
from tagledger.site import EXAMPLE_SITE
from tagledger.wire import Ack, ReadBatch, Topics, decode_as, encode

STORE, READER = "paris-01", "paris-01-r1"


def edge_settings(tmp_path: Path, broker: tuple[str, int], topic_root: str, **overrides: Any) -> EdgeSettings:
    host, port = broker
    values: dict[str, Any] = {
        "site": EXAMPLE_SITE,
        "reader_id": READER,
        "mqtt_host": host,
        "mqtt_port": port,
        "topic_root": topic_root,
        "client_id": f"{topic_root}-agent",
        "spool_path": tmp_path / "spool.sqlite",
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.3,
        "keepalive_s": 5,
        "heartbeat_interval_s": 0.3,
        "window_ms": 100,
    }
    values.update(overrides)
    return EdgeSettings(**values)


class Collector:
    """A subscriber on the real broker that keeps every message it gets."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[aiomqtt.Message] = []
        self._arrived = asyncio.Event()

    async def _pump(self) -> None:
        async for m in self.client.messages:
            self.messages.append(m)
            self._arrived.set()

    def on(self, topic: str) -> list[bytes]:
        return [bytes(m.payload) for m in self.messages if m.topic.matches(topic)]  # type: ignore[arg-type]

    def batches(self, topic: str) -> list[ReadBatch]:
        return [decode_as(ReadBatch, p) for p in self.on(topic)]

    async def wait_for(self, predicate: Any, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._arrived.clear()
                await self._arrived.wait()

    async def ack(self, topic: str, batch: ReadBatch, result: str = "committed") -> None:
        """Do what the gateway does after committing a batch."""
        ack = Ack(reader_id=batch.reader_id, boot_id=batch.boot_id, seq=batch.seq, result=result)  # type: ignore[arg-type]
        await self.client.publish(topic, encode(ack), qos=1)


@contextlib.asynccontextmanager
async def collect(broker: tuple[str, int], *filters: str) -> AsyncIterator[Collector]:
    host, port = broker
    async with aiomqtt.Client(host, port) as client:
        for f in filters:
            await client.subscribe(f, qos=1)
        collector = Collector(client)
        task = asyncio.create_task(collector._pump(), name="test.collector")
        try:
            yield collector
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


async def forget_session(broker: tuple[str, int], client_id: str, *retained: str) -> None:
    """Leave the shared broker as we found it: drop the persistent session and retained messages."""
    host, port = broker
    async with aiomqtt.Client(host, port, identifier=client_id, clean_session=True) as client:
        for topic in retained:
            await client.publish(topic, b"", qos=1, retain=True)


async def eventually(predicate: Any, within: float = 5.0, step: float = 0.02) -> None:
    async with asyncio.timeout(within):
        # Polling: the state belongs to the code under test, which has no event for it.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(step)


class AckingGateway:
    """The gateway's side of delivery on the real broker: record every batch, then ack it.

    ``received`` keeps every message as it arrived (re-sends included), so a
    test can check that duplicates are only re-sends of the same bytes.
    """

    def __init__(self, broker: tuple[str, int], topic_root: str, store: str = STORE, reader: str = READER) -> None:
        self.broker = broker
        topics = Topics(topic_root)
        self.reads_topic = topics.reads(store, reader)
        self.ack_topic = topics.ack(store, reader)
        self.received: list[tuple[bytes, ReadBatch]] = []
        self._task: asyncio.Task[None] | None = None
        self._client: aiomqtt.Client | None = None

    async def __aenter__(self) -> AckingGateway:
        host, port = self.broker
        self._client = aiomqtt.Client(host, port)
        await self._client.__aenter__()
        await self._client.subscribe(self.reads_topic, qos=1)
        self._task = asyncio.create_task(self._pump(self._client), name="test.gateway")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)

    async def _pump(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = bytes(message.payload)  # type: ignore[arg-type]
            batch = decode_as(ReadBatch, payload)
            self.received.append((payload, batch))  # "committed" first, then acked
            ack = Ack(reader_id=batch.reader_id, boot_id=batch.boot_id, seq=batch.seq, result="committed")
            await client.publish(self.ack_topic, encode(ack), qos=1)

    def unique(self) -> dict[tuple[str, str, int], ReadBatch]:
        """De-duplicated as the gateway does: by (reader, boot, seq)."""
        return {(b.reader_id, b.boot_id, b.seq): b for _, b in self.received}

    def seqs(self, boot_id: str) -> set[int]:
        return {b.seq for _, b in self.received if b.boot_id == boot_id}

    def resends_are_identical(self) -> bool:
        """Every (reader, boot, seq) that came more than once came with the same bytes."""
        first: dict[tuple[str, str, int], bytes] = {}
        for payload, b in self.received:
            if first.setdefault((b.reader_id, b.boot_id, b.seq), payload) != payload:
                return False
        return True

    @property
    def duplicates(self) -> int:
        return len(self.received) - len(self.unique())


def spool_meta(path: Path) -> tuple[str, int, int]:
    """(boot id, last seq issued, batches held) of a spool file, read beside its agent (WAL)."""
    conn = sqlite3.connect(path, timeout=5)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        depth = int(conn.execute("SELECT count(*) FROM batch").fetchone()[0])
    finally:
        conn.close()
    return meta["boot_id"], int(meta["last_seq"]), depth


def site_for_simulation(sim: Any, path: Path) -> Path:
    """A copy of the simulation's site file whose readers point at the simulator's ports."""
    data = sim.site.model_dump(mode="json", exclude_none=True)
    for store in data["stores"]:
        for reader in store.get("readers", []):
            if reader["id"] in sim.endpoints:
                reader["host"], reader["port"] = sim.address(reader["id"])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
