"""The gateway process: broker in, ledger out.

``run(settings)`` composes the resources (ledger, health endpoint, MQTT client)
with an ``AsyncExitStack`` and runs named tasks in a ``TaskGroup``:

* ``receive`` — connect (reconnecting with jittered backoff), subscribe, and
  *prepare* each message in arrival order (validation, de-duplication, state
  machine; :meth:`gateway.ingest.Ingestor.prepare`) into the open group;
* ``commit`` — whenever the previous commit is done, take the whole open group
  and commit it (one ledger transaction per store for all its batches), then
  publish the acks and dead letters;
* ``tick`` — the state machines' silence timers, into the open group too;
* ``reorder`` — batches held because they arrived ahead of a missing
  predecessor (``gateway.reorder``) and waited ``reorder_wait_s`` for it in
  vain, into the open group too;
* ``leases`` (PostgreSQL) — take free stores, notice lost ones.

Grouping
    The group grows while the previous commit runs, so its size follows the
    load on its own: one message at a time when idle (lowest latency), up to
    ``group_max_messages`` under load, when one transaction and one WAL flush
    serve hundreds of batches.  Preparing group N+1 overlaps committing group N.
    A full group stops the receiver, so the backlog waits in the MQTT client's
    queue and in the broker, not in prepared state.

Subscriptions are QoS 1 on a persistent session under a stable client id
(:func:`tagledger.mqtt.persistent_session`; MQTT 5 by default, whose Receive
Maximum sets how many batches the broker sends before our PUBACKs), so batches
published while the gateway is down wait in the broker.  The broker's PUBACK is
not what frees the agent's spool: the gateway's own ``ack`` message, sent after
the ledger commit, is (see ``gateway.ingest``).

Scale out (PostgreSQL)
    With ``leases`` on, the gateway subscribes only to the stores whose lease it
    holds (``gateway.leases``), and writes each through the connection that
    holds its lease.  Every ``lease_poll_s`` it counts the live gateways and
    holds at most ``ceil(stores / live)``: it hands surplus stores back
    (unsubscribe, drain, commit, unlock) and tries free ones up to its share, so
    a gateway that joins gets its share, and when one dies the others take its
    stores within a poll interval; the new holder asks an agent for the batches
    it missed as soon as a later batch of that reader arrives (ack ``resend``),
    and an agent with nothing newer to send re-sends at its ack timeout.  SQLite has one
    writer: one gateway owns every store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack

import aiomqtt

from gateway.health import HealthServer
from gateway.ingest import Ingestor
from gateway.leases import StoreLeases
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from gateway.work import Outgoing, Receipt, Work
from tagledger.clock import Clock, SystemClock
from tagledger.ledger import open_ledger
from tagledger.ledger.migrate import migrate
from tagledger.ledger.repository import LedgerWriter
from tagledger.ledger.urls import parse as parse_ledger_url
from tagledger.mqtt import BrokerAddress, backoff_delays, no_delay, persistent_session
from tagledger.site import Site, load_site
from tagledger.wire import TopicKind, Topics

log = logging.getLogger(__name__)

#: Longest a surplus store's pending writes are waited for before it is handed back.
_DRAIN_LIMIT_S = 10.0
# Heartbeats carry each antenna's read rate (kept in antenna_health for the staff console).
#: Mosquitto's count of messages dropped for queue or in-flight limits since it
#: started (published every ``sys_interval``, 10 s by default).  Reader-published
#: formats (Impinj, Zebra, POS) have no re-send: what the broker drops is lost.
BROKER_DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
#: MQTT 5 DISCONNECT reason "Session taken over": another client connected with our client id.
_SESSION_TAKEN_OVER = 142
_READER_KINDS = (TopicKind.READS, TopicKind.STATUS, TopicKind.HEARTBEAT, TopicKind.IMPINJ, TopicKind.ZEBRA)


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
        self.leases: StoreLeases | None = None
        self._site: Site | None = None
        self._open = Work()
        self._open_lock = asyncio.Lock()  # prepare / tick / hand-over never interleave
        self._has_work = asyncio.Event()
        self._room = asyncio.Event()  # the open group is below its cap
        self._room.set()
        self._client: aiomqtt.Client | None = None
        self._subscribed: set[str] = set()  # stores whose topics we subscribed on this connection
        self._pumped = 0  # messages taken from the MQTT client's queue and prepared so far
        self._taking = 0  # messages taken from the queue and being prepared now
        self._committing: set[str] = set()  # stores of the commit under way
        # Each message's PUBACK handle (connection, mid, qos) is handed to the
        # ingestor with it and comes back in the work that holds its effects
        # (Work.receipts); it is sent only after that work's commit (see _puback).
        self._holding = asyncio.Event()  # the ingestor holds batches for missing predecessors
        self._connection = 0  # counts connections; a mid is only meaningful on its own
        # Readiness tells the truth: a step (prepare, commit) that began this long
        # ago and has not ended means messages wait and nothing is committed.
        self._preparing_since: float | None = None
        self._committing_since: float | None = None
        self.metrics.stalled.set_function(self.stalled_s)
        # Take-over detection: each connection publishes this token, retained, under
        # the client id; finding another process's token there on a REconnect means
        # another client used our id meanwhile (see _on_identity).
        self._token = uuid.uuid4().hex
        self._token_published = False  # by an earlier connection of this process
        self._expect_own_token = False  # this connection must find our token retained
        self._identity_topic = f"{self.topics.base}/_gateway/{_topic_safe(settings.client_id)}/instance"
        self._broker_dropped: int | None = None  # the broker's $SYS count, as last seen
        self._dropped_at: float | None = None  # when it last went up (monotonic)

    # ------------------------------------------------------------------ #

    async def run(self) -> None:
        s = self.settings
        site = self._site = load_site(s.site)
        async with AsyncExitStack() as stack:
            if s.migrate:
                await migrate(s.database_url)
            ledger = await open_ledger(s.database_url)
            stack.push_async_callback(ledger.close)
            postgres = parse_ledger_url(s.database_url).backend == "postgresql"
            if s.leases and postgres:
                self.leases = StoreLeases(parse_ledger_url(s.database_url).target, application_name=s.client_id)
                stack.push_async_callback(self.leases.close)
            leases = self.leases
            self.ingestor = Ingestor(
                site,
                ledger,
                self.topics,
                self.clock,
                self.metrics,
                s.stores,
                ledger_for=self._ledger_for(ledger),
                reorder_wait_s=s.reorder_wait_s,
                reorder_max_held=s.reorder_max_held,
                clock_skew_s=s.clock_skew_s,
            )
            if leases is None:
                await self.ingestor.load()
            else:
                await self._poll_leases(self.ingestor, leases)
            self.metrics.stores_held.set(len(self.ingestor.trackers))
            _freeze_heap()
            if s.health_port is not None:
                health = await stack.enter_async_context(
                    HealthServer(s.health_host, s.health_port, ready=self._is_ready, metrics=self.metrics.render)
                )
                self.health_port = health.port
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._receive(self.ingestor), name="gateway-receive")
                tg.create_task(self._commit(self.ingestor), name="gateway-commit")
                tg.create_task(self._ticks(self.ingestor), name="gateway-tick")
                if s.reorder_wait_s > 0:
                    tg.create_task(self._release_held(self.ingestor), name="gateway-reorder")
                if leases is not None:
                    tg.create_task(self._lease_loop(self.ingestor, leases), name="gateway-leases")

    def _ledger_for(self, ledger: LedgerWriter) -> Callable[[str], LedgerWriter]:
        def ledger_for(store_id: str) -> LedgerWriter:
            if self.leases is not None and store_id in self.leases.held():
                return self.leases.ledger(store_id)
            return ledger

        return ledger_for

    async def _is_ready(self) -> bool:
        return self.ready.is_set() and not self.stalled() and not self.dropping()

    def stalled_s(self) -> float:
        """How long the oldest unfinished step (prepare or commit) has been running; 0 when none is."""
        now = time.monotonic()
        began = [t for t in (self._preparing_since, self._committing_since) if t is not None]
        return now - min(began) if began else 0.0

    def stalled(self) -> bool:
        """Ingestion stuck: messages wait and no commit has ended for ``stall_after_s``."""
        return self.stalled_s() > self.settings.stall_after_s

    def dropping(self) -> bool:
        """The broker dropped messages within the last ``dropped_unready_s``."""
        at = self._dropped_at
        return at is not None and time.monotonic() - at < self.settings.dropped_unready_s

    def _candidate_stores(self) -> list[str]:
        assert self._site is not None
        wanted = self.settings.stores
        return [st.id for st in self._site.stores if not wanted or st.id in wanted]

    # ------------------------------------------------------------------ #
    # Prepare side

    async def _add(self, ingestor: Ingestor, messages: list[tuple[str, bytes]], acks: list[Receipt]) -> None:
        await self._room.wait()
        async with self._open_lock:
            try:
                await ingestor.prepare(messages, self._open, acks)
            finally:
                # Even when prepare failed part-way: a hold it stored must still time out.
                if ingestor.holding:
                    self._holding.set()
            if self._open:
                self._has_work.set()
            if self._open.messages >= self.settings.group_max_messages:
                self._room.clear()

    async def _ticks(self, ingestor: Ingestor) -> None:
        while True:
            await asyncio.sleep(self.settings.tick_interval_s)
            async with self._open_lock:
                ingestor.tick(self._open)
                if self._open:
                    self._has_work.set()

    async def _release_held(self, ingestor: Ingestor) -> None:
        """Prepare the batches whose hold for a missing predecessor is over (``gateway.reorder``).

        Holds that end because their predecessor came, or because too many
        messages are held, are released by the receiver itself, at once; this
        task only gives up on holes that did not fill within ``reorder_wait_s``.
        """
        while True:
            wait_s = ingestor.next_release_s()
            if wait_s is None:
                self._holding.clear()
                await self._holding.wait()
                continue
            if wait_s > 0:
                # Sleep to the first deadline; a hole filled meanwhile just makes it early.
                await asyncio.sleep(wait_s)
                continue
            await self._room.wait()
            async with self._open_lock:
                try:
                    await ingestor.release_due(self._open)
                except Exception:
                    # Like a message handler, this must not kill the gateway.  A
                    # released batch that was not prepared gets no ack: its agent
                    # sends it again.
                    log.exception("unexpected error releasing held batches")
                if self._open:
                    self._has_work.set()
                if self._open.messages >= self.settings.group_max_messages:
                    self._room.clear()

    # ------------------------------------------------------------------ #
    # Commit side

    async def _commit(self, ingestor: Ingestor) -> None:
        while True:
            await self._has_work.wait()
            async with self._open_lock:
                work, self._open = self._open, Work()
                self._has_work.clear()
                self._room.set()
            self.metrics.group_messages.observe(work.messages)
            started = time.perf_counter()
            self._committing = set(work.stores)
            self._committing_since = time.monotonic()
            try:
                replies = await ingestor.commit(work)
                self.metrics.commit_seconds.observe(time.perf_counter() - started)
                self.metrics.last_commit.set_to_current_time()
                await self._publish(replies)
                self._puback(work.receipts)
            finally:
                self._committing = set()
                self._committing_since = None

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
        client = self._client
        if client is None:
            return
        for connection, mid, qos in acks:
            if connection == self._connection and qos > 0:
                client._client.ack(mid, qos)

    async def _publish(self, replies: list[Outgoing]) -> None:
        client = self._client
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
    # MQTT

    def _filters(self, store_id: str) -> list[str]:
        base = self.topics.base
        return [f"{base}/{store_id}/+/{kind.value}" for kind in _READER_KINDS] + [self.topics.pos(store_id)]

    def _all_filters(self) -> list[str]:
        return [self.topics.all_of_kind(kind) for kind in _READER_KINDS] + [self.topics.all_pos()]

    async def _sync_subscriptions(self, client: aiomqtt.Client, ingestor: Ingestor) -> None:
        """Subscribe to the stores held, unsubscribe from the others (leases only)."""
        held = set(ingestor.trackers)
        for store_id in sorted(held - self._subscribed):
            for f in self._filters(store_id):
                await client.subscribe(f, qos=1)
            self._subscribed.add(store_id)
        for store_id in sorted(self._subscribed - held):
            for f in self._filters(store_id):
                await client.unsubscribe(f)
            self._subscribed.discard(store_id)

    async def _receive(self, ingestor: Ingestor) -> None:
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
                # PUBACK after the commit, not on arrival (see _puback).
                client._client.manual_ack_set(True)
                self._connection += 1
                async with client:
                    no_delay(client)
                    # Acks go out concurrently after each commit; aiomqtt warns past 10.
                    client.pending_calls_threshold = 10 * s.group_max_messages
                    # QoS 0: a counter, not a message to acknowledge.  A broker
                    # whose ACL refuses it answers with a failure code; no harm.
                    await client.subscribe(BROKER_DROPPED_TOPIC, qos=0)
                    # The retained token arrives before our own: SUBSCRIBE is handled first.
                    self._expect_own_token = self._token_published
                    await client.subscribe(self._identity_topic, qos=1)
                    await client.publish(self._identity_topic, self._token.encode(), qos=1, retain=True)
                    self._token_published = True
                    if self.leases is None:
                        for f in self._all_filters():
                            await client.subscribe(f, qos=1)
                    else:
                        # A persistent session keeps the subscriptions of the last
                        # run: drop those of stores we do not hold now.
                        for store_id in set(self._candidate_stores()) - set(ingestor.trackers):
                            for f in self._filters(store_id):
                                await client.unsubscribe(f)
                        self._subscribed = set()
                        await self._sync_subscriptions(client, ingestor)
                    self._client = client
                    log.info("gateway subscribed on %s:%s under %s", address.host, address.port, self.topics.base)
                    self.ready.set()
                    delays = _broker_delays()
                    failures, subscribed = 0, True
                    await self._pump(client, ingestor)
            except asyncio.CancelledError:
                _retrieve_disconnect(client)
                raise
            except aiomqtt.MqttError as exc:
                _retrieve_disconnect(client)
                self._client = None
                self._subscribed = set()
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

    async def _pump(self, client: aiomqtt.Client, ingestor: Ingestor) -> None:
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
                        client._client.ack(m.mid, m.qos)  # nothing to commit
                    continue
                items.append((m.topic.value, data))
                acks.append((self._connection, m.mid, m.qos))
            self._taking = len(items)
            self._preparing_since = time.monotonic()
            try:
                if items:
                    await self._add(ingestor, items, acks)
            except Exception:
                # A handler that raises must not kill the receive loop.  The
                # messages are not acked to the agents, which will re-send them.
                log.exception("unexpected error preparing %d messages", len(items))
            finally:
                self._preparing_since = None
            self._pumped += len(group)  # prepared (their stores are in the open group)
            self._taking = 0

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
            self._dropped_at = time.monotonic()
            log.warning(
                "the MQTT broker dropped %d messages (queue or in-flight limits: max_queued_messages,"
                " max_queued_bytes); reader-published formats cannot be re-sent, see docs/reliability.md",
                count - seen,
            )
        self._broker_dropped = count

    # ------------------------------------------------------------------ #
    # Leases

    async def _lease_loop(self, ingestor: Ingestor, leases: StoreLeases) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_poll_s)
            changed = await self._poll_leases(ingestor, leases)
            client = self._client
            if changed and client is not None:
                with contextlib.suppress(aiomqtt.MqttError):
                    await self._sync_subscriptions(client, ingestor)

    async def _poll_leases(self, ingestor: Ingestor, leases: StoreLeases) -> bool:
        changed = False
        for store_id in sorted(leases.held()):
            if not await leases.alive(store_id):
                async with self._open_lock:
                    ingestor.drop_store(store_id)
                await leases.release(store_id)
                log.warning("gave up store %s: its lease is gone", store_id)
                changed = True
        candidates = self._candidate_stores()
        live = await leases.live_gateways()
        # Our share: ceil(stores / live gateways).  Unknown count (database
        # unreachable): keep what we hold, take nothing new.
        quota = -(-len(candidates) // live) if live else len(leases.held())
        for store_id in sorted(leases.held())[quota:]:
            await self._hand_back(ingestor, leases, store_id)
            changed = True
        for store_id in candidates:
            if len(leases.held()) >= quota:
                break
            if store_id in leases.held():
                continue
            if await leases.try_acquire(store_id):
                async with self._open_lock:
                    await ingestor.add_store(store_id)
                log.info("took store %s", store_id)
                changed = True
        self.metrics.stores_held.set(len(ingestor.trackers))
        return changed

    async def _hand_back(self, ingestor: Ingestor, leases: StoreLeases, store_id: str) -> None:
        """Give a surplus store to another gateway without making its agents wait long.

        Unsubscribe first (no new messages for it), then drain: the messages the
        broker delivered before its UNSUBACK are prepared and committed here, so
        their acks go out from this gateway.  Only then is the store dropped
        and its lease (the session's lock) released; the next holder loads the
        items this gateway committed.  If draining takes too long (a stuck
        commit), the store is dropped anyway: what is not committed stays
        unacknowledged and the agents re-send it to the new holder.
        """
        client = self._client
        if client is not None and store_id in self._subscribed:
            with contextlib.suppress(aiomqtt.MqttError):
                for f in self._filters(store_id):
                    await client.unsubscribe(f)
            self._subscribed.discard(store_id)
        if client is not None:
            # Everything queued before the UNSUBACK must go through prepare first.
            target = self._pumped + self._taking + len(client.messages)
            deadline = time.monotonic() + _DRAIN_LIMIT_S
            while time.monotonic() < deadline:
                if self._pumped >= target and store_id not in self._open.stores and store_id not in self._committing:
                    break
                await asyncio.sleep(0.02)
            else:
                log.warning("store %s handed back before its writes drained; its agents will re-send", store_id)
        async with self._open_lock:
            ingestor.drop_store(store_id)
        await leases.release(store_id)
        log.info("handed store %s back for another gateway to take", store_id)


def _retrieve_disconnect(client: aiomqtt.Client | None) -> None:
    """Mark the lost connection's reason as seen (asyncio would log "Future exception was never retrieved").

    aiomqtt keeps it in a future that only message iteration reads; a connection
    lost while the receiver was preparing leaves it unread.
    """
    disconnected = getattr(client, "_disconnected", None)
    if isinstance(disconnected, asyncio.Future) and disconnected.done() and not disconnected.cancelled():
        disconnected.exception()


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


def _freeze_heap() -> None:
    """Take what exists after start-up (imported modules, loaded items) out of the cyclic GC's walks.

    A full collection walks every tracked object: the imports alone leave ~99,000
    (pydantic, asyncpg, aiomqtt, epcpy, ...), plus ~3 per loaded item.  Measured
    on a busy 2-core host with 30,000 items made after start-up: a full
    collection took ~90 ms, a stall of ingestion, and 10-18 ms with the start-up
    heap frozen.  These objects live as long as the process, so they are frozen
    once, after a collection has removed the garbage of start-up; objects made
    later are collected as usual.
    """
    gc.collect()
    gc.freeze()


async def run(settings: GatewaySettings) -> None:
    """Run a gateway until cancelled."""
    gateway = Gateway(settings)
    with contextlib.suppress(asyncio.CancelledError):
        await gateway.run()
