"""MQTT side of the agent: send spooled batches, take gateway acks, keep the status topic true.

Delivery contract
    Batches go out with QoS 1 and stay in the spool until the *gateway* acks
    them on the ack topic (QoS 1 too, so an ack sent while the agent is away
    is queued by the broker in the agent's persistent session).  A broker
    PUBACK only tells us the broker has the message; the gateway may still
    crash before committing it.  So delivery is at-least-once and the gateway
    removes duplicates by ``(reader_id, boot_id, seq)``.

Bounded in flight
    paho-mqtt silently drops QoS 1 messages once 65,535 are in flight while
    ``publish()`` still reports success, and an unbounded backlog after an
    outage would flood the broker.  The publisher therefore keeps at most
    ``max_in_flight`` batches (default 100) sent-but-not-acked-by-the-gateway;
    it takes the next ones from the spool only as acks free room.  A batch not
    acked within ``ack_timeout_s`` is sent again (the gateway or its
    subscription may have lost it), or at once when the gateway asks for it
    (an ack with result ``resend``: it got a later batch first), and after
    every reconnect everything still in the spool is sent again from the oldest.

Session
    One fixed client id per agent and a persistent session (``clean_session``
    False in MQTT 3.1.1; ``clean_start`` False plus a session expiry in MQTT 5),
    so acks published while the link was down are delivered on reconnect.
    3.1.1 is the default because every broker speaks it, including the embedded
    demo broker.

Status
    On every connect the agent publishes its :class:`~tagledger.wire.ReaderStatus`
    retained, and registers a retained ``offline`` last will, so that a
    subscriber always finds the truth: the broker publishes the will if the
    agent vanishes without a DISCONNECT (crash, power cut, cable pulled); on a
    graceful stop the agent publishes ``offline`` itself before disconnecting.

Reconnect
    On any connection error: wait a jittered exponential delay
    (:func:`tagledger.mqtt.backoff_delays`, full jitter so a store's agents do
    not reconnect in lock-step after a broker restart) and connect again.  The
    spool keeps filling meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiomqtt

from tagledger.backoff import backoff_delays
from tagledger.clock import Clock
from tagledger.mqtt import no_delay, persistent_session
from tagledger.wire import Ack, Heartbeat, ReaderState, ReaderStatus, Topics, WireError, decode_as, encode

from .settings import EdgeSettings
from .spool import Spool, SpooledBatch

log = logging.getLogger(__name__)

#: How long a graceful stop waits for the broker to take the ``offline`` status.
GOODBYE_TIMEOUT_S = 3.0


class _Stop(Exception):
    """Raised inside the session task group to end it when the agent stops."""


class Publisher:
    def __init__(self, settings: EdgeSettings, *, store_id: str, spool: Spool, clock: Clock) -> None:
        self._settings = settings
        self._store_id = store_id
        self._reader_id = settings.reader_id
        self._spool = spool
        self._clock = clock
        self.topics = Topics(settings.topic_root)
        self._topic_reads = self.topics.reads(store_id, self._reader_id)
        self._topic_status = self.topics.status(store_id, self._reader_id)
        self._topic_heartbeat = self.topics.heartbeat(store_id, self._reader_id)
        self._topic_ack = self.topics.ack(store_id, self._reader_id)
        self._client: aiomqtt.Client | None = None
        self._in_flight: dict[int, float] = {}  # seq -> monotonic time sent
        self._asked: set[int] = set()  # in-flight seqs the gateway asked for again (ack "resend")
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._state = ReaderState.READER_DOWN
        self._detail = ""
        self._antennas_down: list[int] = []
        # Counters, for heartbeats and tests.
        self.connects = 0
        self.sent = 0
        self.resent = 0
        self.acked = 0

    # ------------------------------------------------------------------ #
    # Used by the agent

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def wake(self) -> None:
        """A new batch is in the spool."""
        self._wake.set()

    async def set_status(
        self, state: ReaderState, *, detail: str = "", antennas_down: Sequence[int] | None = None
    ) -> None:
        """Change the retained status; published now if connected, else on the next connect."""
        self._state = state
        self._detail = detail
        if antennas_down is not None:
            self._antennas_down = sorted(antennas_down)
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._publish_status(client, self._status())

    async def publish_heartbeat(self, heartbeat: Heartbeat) -> bool:
        """QoS 0: a lost heartbeat is replaced by the next one.  False when offline."""
        client = self._client
        if client is None:
            return False
        try:
            await client.publish(self._topic_heartbeat, encode(heartbeat), qos=0)
        except aiomqtt.MqttError:
            return False
        return True

    async def stop(self) -> None:
        """Publish ``offline``, disconnect and let :meth:`run` return (bounded wait)."""
        self._stopping.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(GOODBYE_TIMEOUT_S + 2.0):
                await self._stopped.wait()

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff; returns after :meth:`stop`."""
        s = self._settings
        try:
            delays = backoff_delays(s.reconnect_initial_s, s.reconnect_max_s)
            while not self._stopping.is_set():
                connects = self.connects
                try:
                    await self._session()
                    return
                except* aiomqtt.MqttError as group:
                    log.warning(
                        "MQTT broker %s:%d: %s; spooling until it is back",
                        s.broker().host,
                        s.broker().port,
                        group.exceptions[0],
                    )
                if self.connects != connects:  # we were connected: start the schedule over
                    delays = backoff_delays(s.reconnect_initial_s, s.reconnect_max_s)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(next(delays)):
                        await self._stopping.wait()
        finally:
            self._stopped.set()

    # ------------------------------------------------------------------ #
    # One connection

    def _status(
        self, state: ReaderState | None = None, detail: str | None = None, *, last_will: bool = False
    ) -> ReaderStatus:
        return ReaderStatus(
            last_will=last_will,
            store_id=self._store_id,
            reader_id=self._reader_id,
            state=state or self._state,
            at_us=self._clock.now_us(),
            boot_id=self._spool.boot_id,
            detail=self._detail if detail is None else detail,
            antennas_down=self._antennas_down,
        )

    def _make_client(self) -> aiomqtt.Client:
        s = self._settings
        kwargs: dict[str, Any] = s.broker().client_kwargs(
            ca_file=str(s.tls_ca_file) if s.tls_ca_file else None,
            cert_file=str(s.tls_cert_file) if s.tls_cert_file else None,
            key_file=str(s.tls_key_file) if s.tls_key_file else None,
            username=s.username,
            password=s.password.get_secret_value() if s.password else None,
        )
        kwargs.update(persistent_session(s.mqtt_protocol))
        # Its at_us is now, the connect; last_will=True tells the gateway that it
        # still comes after every status this connection publishes.
        will = self._status(ReaderState.OFFLINE, "connection lost", last_will=True)
        client = aiomqtt.Client(
            identifier=s.effective_client_id(),
            will=aiomqtt.Will(self._topic_status, encode(will), qos=1, retain=True),
            keepalive=s.keepalive_s,
            # paho's own window; ours (max_in_flight) is the real bound.
            max_inflight_messages=s.max_in_flight,
            **kwargs,
        )
        # aiomqtt warns once per publish beyond 10 awaiting their PUBACK.  After
        # an outage the send loop has up to max_in_flight batches out at once by
        # design (plus status and heartbeat): that is the bound working, not
        # trouble, and a warning per batch would bury real ones in the log.
        client.pending_calls_threshold = s.max_in_flight + 10
        return client

    async def _session(self) -> None:
        client = self._make_client()
        async with client:
            no_delay(client)
            self.connects += 1
            self._in_flight = {}
            self._asked = set()
            log.info("connected to MQTT broker as %s", self._settings.effective_client_id())
            await client.subscribe(self._topic_ack, qos=1)
            # Visible before the first status goes out: a status change arriving
            # while that publish awaits its PUBACK is then published after it
            # (QoS 1 publishes leave in call order) instead of being lost.
            self._client = client
            try:
                await self._publish_status(client, self._status())
                try:
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._send_loop(client), name=f"edge.mqtt.send[{self._reader_id}]")
                        tg.create_task(self._ack_loop(client), name=f"edge.mqtt.acks[{self._reader_id}]")
                        tg.create_task(self._until_stopped(), name=f"edge.mqtt.stop[{self._reader_id}]")
                except* _Stop:
                    pass
            finally:
                self._client = None
            await self._goodbye(client)

    async def _until_stopped(self) -> None:
        await self._stopping.wait()
        raise _Stop

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        try:
            await self._publish_status(
                client, self._status(ReaderState.OFFLINE, "agent stopped"), wait_s=GOODBYE_TIMEOUT_S
            )
        except aiomqtt.MqttError as exc:
            log.warning("could not publish offline status: %s", exc)

    async def _publish_status(self, client: aiomqtt.Client, status: ReaderStatus, wait_s: float | None = None) -> None:
        # Retained and QoS 1: the status topic is read by whoever subscribes
        # later (dashboards, the gateway after a restart).
        await client.publish(self._topic_status, encode(status), qos=1, retain=True, timeout=wait_s)

    async def _send(self, client: aiomqtt.Client, batch: SpooledBatch) -> None:
        await client.publish(self._topic_reads, batch.payload, qos=1)

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        ack_timeout = self._settings.ack_timeout_s
        in_flight = self._in_flight
        last_sent = -1  # after a reconnect, everything in the spool goes again
        while True:
            self._wake.clear()
            now = time.monotonic()
            asked, self._asked = self._asked, set()
            for seq in sorted(s for s, t in in_flight.items() if now - t >= ack_timeout or s in asked):
                batch = await self._spool.get(seq)
                if batch is None:  # acked meanwhile, or dropped by a full spool
                    in_flight.pop(seq, None)
                    continue
                if seq in asked:
                    log.info("batch %d asked for again by the gateway: sending again", seq)
                else:
                    log.info("batch %d not confirmed by the gateway within %.1f s: sending again", seq, ack_timeout)
                in_flight[seq] = time.monotonic()
                await self._send(client, batch)
                self.resent += 1
            room = self._settings.max_in_flight - len(in_flight)
            if room > 0:
                batches = await self._spool.pending(room, after_seq=last_sent)
                for batch in batches:
                    # Marked before sending: the gateway's ack may overtake our PUBACK.
                    in_flight[batch.seq] = time.monotonic()
                    last_sent = batch.seq
                # Sent together, not one PUBACK round trip each: a backlog after
                # an outage drains at link speed, still never more than the bound.
                async with asyncio.TaskGroup() as sends:
                    for b in batches:
                        sends.create_task(self._send(client, b), name=f"edge.mqtt.publish[{b.seq}]")
                self.sent += len(batches)
            wait = min(in_flight.values()) + ack_timeout - time.monotonic() if in_flight else None
            if wait is None or wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()

    async def _ack_loop(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if message.topic.value != self._topic_ack:
                # Only the ack topic is subscribed, but a broker may still hand over
                # others (the embedded demo broker delivers retained messages of
                # other topics on subscribe): not ours, not malformed.
                continue
            try:
                ack = decode_as(Ack, bytes(message.payload))
            except WireError as exc:
                # A bad message must never kill the receive loop.
                log.warning("ignoring malformed ack on %s: %s", message.topic, exc)
                continue
            if ack.reader_id != self._reader_id:
                continue
            if ack.result == "resend":
                # The gateway got a later batch but not this one: send it again now
                # (if it is still ours to send) rather than at its ack timeout.
                if ack.boot_id == self._spool.boot_id and ack.seq in self._in_flight:
                    self._asked.add(ack.seq)
                    self._wake.set()
                continue
            if await self._spool.ack(ack.boot_id, ack.seq):
                self.acked += 1
            if ack.boot_id == self._spool.boot_id:
                self._in_flight.pop(ack.seq, None)
                self._wake.set()
