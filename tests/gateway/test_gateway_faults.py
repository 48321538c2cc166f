"""Issue 11, defects 1, 7 and 8 at the process level: readiness that tells the truth, broker drops, MQTT identities.

Real PostgreSQL, the shared Mosquitto, and a Mosquitto of the test's own where
its limits or its life are the point.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from gateway.service import Gateway
from gateway.settings import GatewaySettings, default_client_id
from tagledger.app.faults import Mosquitto, TcpProxy
from tagledger.site import EXAMPLE_SITE
from tagledger.wire import Topics
from tests.gateway.ingest_kit import READER, STORE, batch, dumps
from tests.gateway.test_ledger_faults import _connections

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@contextlib.asynccontextmanager
async def gateway(pg_url: str, mqtt_url: str, topic_root: str, **kw: Any) -> AsyncIterator[Gateway]:
    settings: dict[str, Any] = {
        "site": EXAMPLE_SITE,
        "database_url": pg_url,
        "mqtt_url": mqtt_url,
        "topic_root": topic_root,
        "client_id": f"gw-{uuid.uuid4().hex[:8]}",
        "health_port": 0,
        **kw,
    }
    gw = Gateway(GatewaySettings(**settings))
    task = asyncio.create_task(gw.run(), name="gateway-under-test")
    try:
        await asyncio.wait_for(gw.ready.wait(), 20)
        yield gw
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _ready(gw: Gateway) -> int:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.health_port}") as http:
        return (await http.get("/readyz")).status_code


async def _until(predicate: Any, timeout: float = 15) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


def _now_batch(seq: int, epcs: range) -> bytes:
    now = int(time.time() * 1e6)
    doc = batch(seq, epcs, sent_at_us=now)
    for o in doc["observations"]:
        o["first_seen_us"], o["last_seen_us"] = now - 900_000, now
    return dumps(doc)


async def test_readiness_fails_while_the_database_refuses_and_ingestion_resumes(
    pg_url: str, mqtt: tuple[str, int], topic_root: str
) -> None:
    host, port = mqtt
    topics = Topics(topic_root)
    async with (
        gateway(pg_url, f"mqtt://{host}:{port}", topic_root, stall_after_s=1.0) as gw,
        aiomqtt.Client(host, port, identifier=f"agent-{uuid.uuid4().hex[:8]}") as agent,
    ):
        await agent.subscribe(f"{topics.base}/+/+/ack", qos=1)
        await agent.publish(topics.reads(STORE, READER), _now_batch(0, range(3)), qos=1)
        await _until(lambda: _committed(gw, 1))
        assert await _ready(gw) == 200
        await _connections(pg_url, allow=False)
        try:
            await agent.publish(topics.reads(STORE, READER), _now_batch(1, range(3, 6)), qos=1)

            async def not_ready() -> bool:
                return await _ready(gw) == 503

            await _until(not_ready)
            assert gw.stalled_s() > 1.0
        finally:
            await _connections(pg_url, allow=True)
        await _until(lambda: _committed(gw, 2), timeout=30)

        async def ready() -> bool:
            return await _ready(gw) == 200

        await _until(ready)


async def _committed(gw: Gateway, n: int) -> bool:
    value = gw.metrics.registry.get_sample_value("tagledger_batches_total", {"result": "committed"})
    return (value or 0) >= n


@pytest.mark.allow_logged_errors
async def test_two_gateways_with_one_client_id_are_told_apart_in_log_and_metrics(
    pg_url: str, mqtt: tuple[str, int], topic_root: str, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = mqtt
    same = f"gw-same-{uuid.uuid4().hex[:8]}"
    url = f"mqtt://{host}:{port}"
    async with (
        gateway(pg_url, url, topic_root, client_id=same) as first,
        gateway(pg_url, url, topic_root, client_id=same, migrate=False) as second,
    ):

        async def taken_over() -> bool:
            return sum(g.metrics.session_takeovers._value.get() for g in (first, second)) >= 1

        await _until(taken_over, timeout=15)
    assert any("session taken over" in r.getMessage() and same in r.getMessage() for r in caplog.records)


def test_the_default_client_id_is_stable_and_differs_by_store_set_and_port() -> None:
    site = Path("site.yaml")
    a = GatewaySettings(site=site)
    assert a.client_id == GatewaySettings(site=site).client_id
    assert a.client_id.startswith("tagledger-gateway-")
    others = {
        GatewaySettings(site=site, stores=["paris-01"]).client_id,
        GatewaySettings(site=site, stores=["lyon-01"]).client_id,
        GatewaySettings(site=site, health_port=9109).client_id,
        GatewaySettings(site=site, topic_root="other").client_id,
    }
    assert len(others) == 4
    assert a.client_id not in others
    assert GatewaySettings(site=site, client_id="mine").client_id == "mine"
    assert default_client_id({"stores": ["b", "a"]}) == default_client_id({"stores": ["a", "b"]})


async def test_messages_the_broker_drops_show_in_metrics_log_and_readiness(
    pg_url: str, tmp_path: Path, topic_root: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Reader-published formats have no re-send: a broker queue that overflows must not go unnoticed."""
    topics = Topics(topic_root)
    async with (
        Mosquitto(tmp_path / "broker", max_queued_messages=10) as broker,
        TcpProxy("127.0.0.1", broker.port) as proxy,
        gateway(pg_url, f"mqtt://127.0.0.1:{proxy.port}", topic_root, dropped_unready_s=30) as gw,
    ):
        assert await _ready(gw) == 200
        await proxy.stop()  # the gateway is away; its persistent session queues at most 10
        event = b'{"timestamp":"2026-11-18T08:00:00+00:00","tagInventoryEvent":{"epcHex":"30340BB8C0000000000000AA",'
        event += b'"antennaPort":1,"peakRssiCdbm":-5000}}'
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier=f"reader-{uuid.uuid4().hex[:6]}") as reader:
            for _ in range(40):
                await reader.publish(topics.impinj(STORE, READER), event, qos=1)
        await proxy.start()

        async def dropped() -> bool:
            return (gw.metrics.registry.get_sample_value("tagledger_broker_dropped_messages") or 0) >= 30

        await _until(dropped)
        assert await _ready(gw) == 503
    assert any(r.levelno == logging.WARNING and "broker dropped" in r.getMessage() for r in caplog.records)


async def test_a_previous_runs_token_is_no_take_over_even_after_failed_first_attempts(
    pg_url: str, mqtt: tuple[str, int], topic_root: str
) -> None:
    host, port = mqtt
    same = f"gw-restart-{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client(host, port, identifier=f"prev-{uuid.uuid4().hex[:6]}") as previous:
        # What the previous run of this gateway left, retained, under its id.
        await previous.publish(f"{topic_root}/v1/_gateway/{same}/instance", b"previous-run", qos=1, retain=True)
    proxy = TcpProxy(host, port)
    await proxy.start()
    await proxy.stop()  # the broker is unreachable at first: the first attempts fail
    settings = GatewaySettings(
        site=EXAMPLE_SITE, database_url=pg_url, mqtt_url=f"mqtt://127.0.0.1:{proxy.port}", topic_root=topic_root,
        client_id=same, health_port=None,
    )  # fmt: skip
    gw = Gateway(settings)
    task = asyncio.create_task(gw.run(), name="gateway-under-test")
    try:

        async def failed_twice() -> bool:
            return gw.session is not None and gw.session.connection >= 2

        await _until(failed_twice, timeout=30)
        await proxy.start()
        await asyncio.wait_for(gw.ready.wait(), 20)
        await asyncio.sleep(0.5)  # the retained token is delivered right after the subscription
        assert gw.session is not None
        assert gw.session.connection > 1  # the first attempts failed
        assert gw.metrics.session_takeovers._value.get() == 0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await proxy.stop()
