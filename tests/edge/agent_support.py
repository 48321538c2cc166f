"""Helpers for the agent's integration tests: settings, a subscriber, the gateway's side of acks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt

from edge.settings import EdgeSettings
from tagledger.site import EXAMPLE_SITE
from tagledger.wire import Ack, ReadBatch, decode_as, encode

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
