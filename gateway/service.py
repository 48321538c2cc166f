"""The gateway process: broker in, ledger out.

``run(settings)`` composes the resources (ledger, health endpoint, MQTT client)
with an ``AsyncExitStack`` and runs named tasks in a ``TaskGroup``:

* ``mqtt`` — connect (reconnecting with jittered backoff), subscribe, and feed
  each message to the :class:`~gateway.ingest.Ingestor`, publishing the acks and
  dead letters it returns;
* ``tick`` — the state machines' silence timers.

Subscriptions are QoS 1 on a persistent session (``clean_session=False`` under a
stable client id), so batches published while the gateway is down wait in the
broker.  The broker's PUBACK is not what frees the agent's spool: the gateway's
own ``ack`` message, sent after the ledger commit, is (see ``gateway.ingest``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack

import aiomqtt

from gateway.health import HealthServer
from gateway.ingest import Ingestor
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from tagledger.clock import Clock, SystemClock
from tagledger.ledger import open_ledger
from tagledger.ledger.migrate import migrate
from tagledger.mqtt import BrokerAddress, backoff_delays, protocol_version
from tagledger.site import load_site
from tagledger.wire import TopicKind, Topics

log = logging.getLogger(__name__)


class Gateway:
    """A running gateway; ``ready`` is set once the ledger is loaded and the broker subscribed."""

    def __init__(self, settings: GatewaySettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = GatewayMetrics()
        self.topics = Topics(settings.topic_root)
        self.ready = asyncio.Event()
        self.ingestor: Ingestor | None = None
        self.health_port: int | None = None

    async def run(self) -> None:
        s = self.settings
        site = load_site(s.site)
        async with AsyncExitStack() as stack:
            if s.migrate:
                await migrate(s.database_url)
            ledger = await open_ledger(s.database_url)
            stack.push_async_callback(ledger.close)
            self.ingestor = Ingestor(site, ledger, self.topics, self.clock, self.metrics, s.stores)
            await self.ingestor.load()
            if s.health_port is not None:
                health = await stack.enter_async_context(
                    HealthServer(s.health_host, s.health_port, ready=self._is_ready, metrics=self.metrics.render)
                )
                self.health_port = health.port
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._mqtt(self.ingestor), name="gateway-mqtt")
                tg.create_task(self._ticks(self.ingestor), name="gateway-tick")

    async def _is_ready(self) -> bool:
        return self.ready.is_set()

    async def _ticks(self, ingestor: Ingestor) -> None:
        while True:
            await asyncio.sleep(self.settings.tick_interval_s)
            await ingestor.tick()

    async def _mqtt(self, ingestor: Ingestor) -> None:
        s = self.settings
        address = BrokerAddress.parse(s.mqtt_url)
        kwargs = address.client_kwargs(
            ca_file=s.mqtt_ca_file,
            cert_file=s.mqtt_cert_file,
            key_file=s.mqtt_key_file,
            username=s.mqtt_username,
            password=s.mqtt_password,
        )
        filters = [
            self.topics.all_of_kind(TopicKind.READS),
            self.topics.all_of_kind(TopicKind.STATUS),
            self.topics.all_pos(),
        ]
        delays = backoff_delays()
        while True:
            try:
                async with aiomqtt.Client(
                    **kwargs,
                    identifier=s.client_id,
                    clean_session=False,
                    protocol=protocol_version(s.mqtt_protocol),
                    # Bounded so that a burst (agents flushing their spools) applies
                    # back-pressure to the socket instead of growing memory.
                    max_queued_incoming_messages=10_000,
                ) as client:
                    for f in filters:
                        await client.subscribe(f, qos=1)
                    log.info("gateway subscribed on %s:%s under %s", address.host, address.port, self.topics.base)
                    self.ready.set()
                    delays = backoff_delays()
                    async for message in client.messages:
                        payload = message.payload
                        data = payload if isinstance(payload, bytes) else str(payload or "").encode()
                        try:
                            replies = await ingestor.handle(message.topic.value, data)
                        except Exception:
                            # A handler that raises must not kill the receive loop.  The
                            # message is not acked to the agent, which will re-send it.
                            log.exception("unexpected error handling a message on %s", message.topic.value)
                            continue
                        for reply in replies:
                            await client.publish(reply.topic, reply.payload, qos=reply.qos)
            except aiomqtt.MqttError as exc:
                self.ready.clear()
                delay = next(delays)
                log.warning("MQTT connection lost (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)


async def run(settings: GatewaySettings) -> None:
    """Run a gateway until cancelled."""
    gateway = Gateway(settings)
    with contextlib.suppress(asyncio.CancelledError):
        await gateway.run()
