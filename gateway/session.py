"""The gateway's MQTT session: connect, subscribe, receive into commit groups, publish, PUBACK.

:meth:`MqttSession.run` connects (reconnecting with jittered backoff, capped at
5 s), subscribes and hands each batch of queued messages, in arrival order, to
:meth:`gateway.grouping.CommitGroups.add`.

Subscriptions are QoS 1 on a persistent session under a stable client id
(:func:`tagledger.mqtt.persistent_session`; MQTT 5 by default, whose Receive
Maximum sets how many batches the broker sends before our PUBACKs), so batches
published while the gateway is down wait in the broker.  The broker's PUBACK is
not what frees the agent's spool: the gateway's own ``ack`` message, sent after
the ledger commit, is (see ``gateway.ingest``).  With store leases the session
subscribes only to the stores held (:meth:`sync_subscriptions`).

Take-over detection: each connection publishes a token, retained, under the
client id; finding another process's token there on a REconnect means another
client used our id meanwhile (:meth:`_on_identity`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterator

import aiomqtt

from gateway.grouping import CommitGroups
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from gateway.work import Outgoing, Receipt
from tagledger.backoff import backoff_delays
from tagledger.mqtt import (
    BrokerAddress,
    manual_acks,
    no_delay,
    persistent_session,
    puback,
    retrieve_disconnect,
)
from tagledger.wire import TopicKind, Topics

log = logging.getLogger(__name__)

#: Mosquitto's count of messages dropped for queue or in-flight limits since it
#: started (published every ``sys_interval``, 10 s by default).  Reader-published
#: formats (Impinj, Zebra, POS) have no re-send: what the broker drops is lost.
BROKER_DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
#: MQTT 5 DISCONNECT reason "Session taken over": another client connected with our client id.
_SESSION_TAKEN_OVER = 142
_READER_KINDS = (TopicKind.READS, TopicKind.STATUS, TopicKind.HEARTBEAT, TopicKind.IMPINJ, TopicKind.ZEBRA)


class MqttSession:
    """One gateway's connection to the broker, across reconnections.

    ``held``: the stores whose topics to subscribe to, or None for every store
    (no leases).  ``ready`` is set while subscribed.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        topics: Topics,
        metrics: GatewayMetrics,
        groups: CommitGroups,
        ready: asyncio.Event,
        held: Callable[[], set[str]] | None,
        candidates: Callable[[], list[str]],
    ) -> None:
        self.settings = settings
        self.topics = topics
        self.metrics = metrics
        self.groups = groups
        self.ready = ready
        self._held = held
        self._candidates = candidates
        self.client: aiomqtt.Client | None = None
        self.connection = 0  # counts connections; a mid is only meaningful on its own
        self.subscribed: set[str] = set()  # stores whose topics we subscribed on this connection
        self.pumped = 0  # messages taken from the MQTT client's queue and prepared so far
        self.taking = 0  # messages taken from the queue and being prepared now
        self._token = uuid.uuid4().hex
        self._token_published = False  # by an earlier connection of this process
        self._expect_own_token = False  # this connection must find our token retained
        self._identity_topic = f"{topics.base}/_gateway/{_topic_safe(settings.client_id)}/instance"
        self._broker_dropped: int | None = None  # the broker's $SYS count, as last seen
        self.dropped_at: float | None = None  # when it last went up (monotonic)

    def queued(self) -> int:
        """Messages in the MQTT client's queue, not taken yet."""
        return len(self.client.messages) if self.client is not None else 0

    # ------------------------------------------------------------------ #
    # Out

    async def deliver(self, replies: list[Outgoing], receipts: list[Receipt]) -> None:
        """After a commit: publish its replies, then acknowledge its messages to the broker."""
        await self._publish(replies)
        self._puback(receipts)

    def _puback(self, acks: list[Receipt]) -> None:
        """Acknowledge to the broker the messages whose effects are committed.

        paho would PUBACK a message as soon as it arrives.  Then a gateway killed
        between arrival and commit loses the message from the broker, and the agent's
        re-send comes later, behind batches that were still queued: the ledger would
        depend on arrival order.  Acking after the commit makes the broker redeliver
        every uncommitted message, in its original order, when the session resumes.
        A message of an earlier connection is not acked: its mid means nothing now,
        and the broker redelivers it on the new connection anyway.

        The acks go in arrival order except for batches held for a missing
        predecessor (``gateway.reorder``): those are acked after their own
        commit, later than messages that came after them.  Not doing so would
        keep the broker's in-flight window full of messages waiting behind the
        hold, and the predecessor could not come in.  Brokers match a PUBACK by
        its packet id (Mosquitto, EMQX), whatever the order.
        """
        client = self.client
        if client is None:
            return
        for connection, mid, qos in acks:
            if connection == self.connection and qos > 0:
                puback(client, mid, qos)

    async def _publish(self, replies: list[Outgoing]) -> None:
        client = self.client
        if not replies:
            return
        if client is None:
            # Not connected: the agents re-send what is not acked; dead letters are
            # in the rejects table anyway.
            log.warning("%d replies not sent: not connected to the broker", len(replies))
            return
        try:
            await asyncio.gather(*(client.publish(r.topic, r.payload, qos=r.qos) for r in replies))
        except aiomqtt.MqttError as exc:
            log.warning("%d replies not sent (%s); agents will re-send", len(replies), exc)

    # ------------------------------------------------------------------ #
    # Subscriptions

    def _filters(self, store_id: str) -> list[str]:
        base = self.topics.base
        return [f"{base}/{store_id}/+/{kind.value}" for kind in _READER_KINDS] + [self.topics.pos(store_id)]

    def _all_filters(self) -> list[str]:
        return [self.topics.all_of_kind(kind) for kind in _READER_KINDS] + [self.topics.all_pos()]

    async def sync_subscriptions(self) -> None:
        """Subscribe to the stores held, unsubscribe from the others (leases only)."""
        client = self.client
        if client is None or self._held is None:
            return
        held = self._held()
        for store_id in sorted(held - self.subscribed):
            for f in self._filters(store_id):
                await client.subscribe(f, qos=1)
            self.subscribed.add(store_id)
        for store_id in sorted(self.subscribed - held):
            await self.unsubscribe(store_id)

    async def unsubscribe(self, store_id: str) -> None:
        """No more messages of this store (raises ``aiomqtt.MqttError`` if the connection is lost)."""
        client = self.client
        if client is not None and store_id in self.subscribed:
            for f in self._filters(store_id):
                await client.unsubscribe(f)
        self.subscribed.discard(store_id)

    # ------------------------------------------------------------------ #
    # In

    async def run(self) -> None:
        s = self.settings
        address = BrokerAddress.parse(s.mqtt_url)
        kwargs = address.client_kwargs(
            ca_file=s.mqtt_ca_file,
            cert_file=s.mqtt_cert_file,
            key_file=s.mqtt_key_file,
            username=s.mqtt_username,
            password=s.mqtt_password,
        )
        # Reconnect attempts are capped at 5 s (full jitter): the broker's return is
        # what ingestion waits for; with a 30 s cap the first commit after a 30 s
        # broker outage came 10-20 s late (tagledger bench faults).
        delays = _broker_delays()
        failures = 0  # connection attempts failed in a row
        while True:
            subscribed = False
            client: aiomqtt.Client | None = None
            try:
                client = aiomqtt.Client(
                    **kwargs,
                    identifier=s.client_id,
                    # The broker sends at most mqtt_receive_maximum batches unacknowledged
                    # (MQTT 5), and we PUBACK only after commits: this window is what
                    # the commit groups can fill while the previous commit runs.
                    **persistent_session(s.mqtt_protocol, receive_maximum=s.mqtt_receive_maximum),
                    # aiomqtt *discards* a message that finds its queue full; it is
                    # then unacked until the next connection redelivers it.  So the
                    # default is unbounded, and memory is bounded by the broker's
                    # in-flight window (we PUBACK only after commits) and the group cap.
                    max_queued_incoming_messages=s.max_queued_messages,
                )
                manual_acks(client)  # PUBACK after the commit, not on arrival (see _puback)
                self.connection += 1
                async with client:
                    no_delay(client)
                    # Acks go out concurrently after each commit; aiomqtt warns past 10.
                    client.pending_calls_threshold = 10 * s.group_max_messages
                    await self._subscribe(client)
                    self.client = client
                    log.info("gateway subscribed on %s:%s under %s", address.host, address.port, self.topics.base)
                    self.ready.set()
                    delays = _broker_delays()
                    failures, subscribed = 0, True
                    await self._pump(client)
            except asyncio.CancelledError:
                retrieve_disconnect(client)
                raise
            except aiomqtt.MqttError as exc:
                retrieve_disconnect(client)
                self.client = None
                self.subscribed = set()
                self.ready.clear()
                if _taken_over(exc):
                    self._taken_over()
                delay = next(delays)
                where = f"{address.host}:{address.port}"
                if subscribed:
                    log.warning("MQTT broker %s: connection lost (%s); reconnecting in %.1f s", where, exc, delay)
                else:
                    failures += 1
                    log.warning(
                        "MQTT broker %s: cannot connect (%s); attempt %d failed, retrying in %.1f s",
                        where,
                        exc,
                        failures,
                        delay,
                    )
                await asyncio.sleep(delay)

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        # QoS 0: a counter, not a message to acknowledge.  A broker
        # whose ACL refuses it answers with a failure code; no harm.
        await client.subscribe(BROKER_DROPPED_TOPIC, qos=0)
        # The retained token arrives before our own: SUBSCRIBE is handled first.
        self._expect_own_token = self._token_published
        await client.subscribe(self._identity_topic, qos=1)
        await client.publish(self._identity_topic, self._token.encode(), qos=1, retain=True)
        self._token_published = True
        if self._held is None:
            for f in self._all_filters():
                await client.subscribe(f, qos=1)
            return
        # A persistent session keeps the subscriptions of the last run: drop those
        # of stores we do not hold now.
        for store_id in set(self._candidates()) - self._held():
            for f in self._filters(store_id):
                await client.unsubscribe(f)
        self.subscribed = set()
        self.client = client
        await self.sync_subscriptions()

    async def _pump(self, client: aiomqtt.Client) -> None:
        messages = client.messages
        cap = self.settings.group_max_messages
        while True:
            first = await anext(messages)
            group = [first]
            # Whatever else is already queued joins the same step (no waiting).
            while len(messages) and len(group) < cap:
                group.append(await anext(messages))
            items = []
            acks = []
            for m in group:
                payload = m.payload
                data = payload if isinstance(payload, bytes) else str(payload or "").encode()
                if m.topic.value == BROKER_DROPPED_TOPIC:
                    self._on_broker_dropped(data, retained=bool(m.retain))
                    continue
                if m.topic.value == self._identity_topic:
                    self._on_identity(data, retained=bool(m.retain))
                    if m.qos > 0:
                        puback(client, m.mid, m.qos)  # nothing to commit
                    continue
                items.append((m.topic.value, data))
                acks.append((self.connection, m.mid, m.qos))
            self.taking = len(items)
            try:
                if items:
                    await self.groups.add(items, acks)
            except Exception:
                # A handler that raises must not kill the receive loop.  The
                # messages are not acked to the agents, which will re-send them.
                log.exception("unexpected error preparing %d messages", len(items))
            self.pumped += len(group)  # prepared (their stores are in the open group)
            self.taking = 0
            await self.groups.progressed()

    # ------------------------------------------------------------------ #
    # What the broker tells us

    def _on_identity(self, token: bytes, *, retained: bool) -> None:
        """The token last published under our client id, received when we subscribe.

        On the first connection of this process it is the previous run's (or
        nobody's).  On a reconnection it must be ours: another one means another
        client connected with our client id in between, taking our session over
        (Mosquitto closes the older connection, under MQTT 3.1.1 without saying
        why).  Two such gateways knock each other off for ever, and each may
        receive messages meant for the other's stores.
        """
        if retained and self._expect_own_token and token.decode(errors="replace") != self._token:
            self._taken_over()

    def _taken_over(self) -> None:
        self.metrics.session_takeovers.inc()
        log.error(
            "MQTT session taken over: another client connected with this gateway's client id %r; two gateways with"
            " one id knock each other off and share one session.  Give each its own"
            " (--client-id, TAGLEDGER_GATEWAY_CLIENT_ID).",
            self.settings.client_id,
        )

    def _on_broker_dropped(self, payload: bytes, *, retained: bool) -> None:
        """The broker's dropped-message count: a metric, a warning and (for a while) not ready when it grows.

        Agents re-send what the broker drops (their spool keeps every batch until
        the gateway's ack); readers that publish MQTT themselves and tills do
        not, so a drop there is a loss.  The retained value a gateway gets when it
        subscribes is its baseline (drops before it started are not its to
        report); Mosquitto publishes the count only once it is above 0, so a
        first value that is not retained is counted from 0.
        """
        try:
            count = int(payload)
        except ValueError:
            return
        self.metrics.broker_dropped.set(count)
        seen = self._broker_dropped
        if seen is None and not retained:
            seen = 0
        if seen is not None and count > seen:
            self.dropped_at = time.monotonic()
            log.warning(
                "the MQTT broker dropped %d messages (queue or in-flight limits: max_queued_messages,"
                " max_queued_bytes); reader-published formats cannot be re-sent, see docs/reliability.md",
                count - seen,
            )
        self._broker_dropped = count


def _broker_delays() -> Iterator[float]:
    return backoff_delays(initial=0.5, maximum=5.0)


def _topic_safe(name: str) -> str:
    return "".join("_" if c in "+#/" else c for c in name) or "_"


def _taken_over(exc: BaseException) -> bool:
    """Did the broker close the connection because another client took our session (MQTT 5 reason 142)?"""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        rc = getattr(seen, "rc", None)
        if getattr(rc, "value", rc) == _SESSION_TAKEN_OVER:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
