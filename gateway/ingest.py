"""From MQTT messages to ledger writes and the replies they call for.

:class:`Ingestor` is the gateway minus the network.  It works in two steps so
that the runtime (``gateway.service``) can overlap them:

``prepare(messages) -> Work``
    validates each message, decides whether a batch is new (``gateway.dedup``)
    and whether it comes in ``seq`` order (``gateway.reorder``),
    runs the store's state machine and collects what to write: per store, an
    ordered list of *segments* (a run of read batches, or a run of transitions
    without a batch such as silence timers, POS transactions and readers that
    publish MQTT themselves), rejects and reader statuses.  Messages are
    prepared in arrival order, one group at a time; a held batch when its hold
    ends (``release_due`` for the holds that wait out).
``commit(work) -> list[Outgoing]``
    writes it: each run of batches is ONE ``LedgerWriter.commit_batches`` call, i.e.
    one transaction and one durable flush shared by every batch that arrived
    together, and returns the acks and dead letters to publish.

Exactly-once effect
    A batch's ledger rows and its ``(reader, boot, seq)`` key commit in one
    transaction; the ack that lets the agent drop the batch from its spool is
    returned only after that commit.  A gateway killed at any instant therefore
    either committed the batch (the agent re-sends, the key is known, the reply
    is ``duplicate``) or did not (the agent re-sends and it is committed now).
    Inside a group, a key repeated is recognised before the state machine sees
    it again (``pending``), and the ledger's insert-first settles it anyway.

Ordering
    Each reader's batches are prepared in ``seq`` order: one that arrives ahead
    of a missing predecessor is held (``gateway.reorder``), unacknowledged,
    until the predecessor comes or ``reorder_wait_s`` is over, so the ledger's
    evidence does not depend on the order the broker delivered them in.
    Works are committed one after the other, in the order they were prepared,
    and a store's segments in their order; a segment's transitions are in
    state-machine order.  So the ledger sees each item's transitions in the
    order the state machine made them, whatever the grouping.  The state
    machine runs ahead of the ledger by at most the work being committed; if a
    commit fails transiently it is retried with the *same* transitions, and if
    the process dies the state machine is rebuilt from the ledger at start.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from gateway.antennas import Step, heartbeat_steps, status_steps
from gateway.dedup import BatchIndex
from gateway.fastwire import Batch, antenna_zones, decode_batch
from gateway.formats import parse_reader_payload
from gateway.metrics import GatewayMetrics
from gateway.read_rates import SAVE_EVERY_US, load_rates, save_steps
from gateway.records import FormatError
from gateway.reorder import Reorder
from gateway.state import StoreTracker
from gateway.vetting import DEFAULT_CLOCK_SKEW_S, check_batch, check_heartbeat, check_pos, check_status
from tagledger.clock import US_PER_S, Clock, MonotonicClock
from tagledger.ledger.model import (
    MAX_REJECT_BYTES,
    BatchKey,
    BatchRecord,
    ReaderHeartbeatRecord,
    ReaderStatusRecord,
    Reject,
    Transition,
)
from tagledger.ledger.repository import CommitResult, LedgerUnavailable, LedgerWriter
from tagledger.mqtt import backoff_delays
from tagledger.site import Site
from tagledger.wire import (
    Ack,
    AckResult,
    Heartbeat,
    PosTransaction,
    ReaderState,
    ReaderStatus,
    Topics,
    WireError,
    decode_as,
    encode,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

#: A reader whose agent sent no heartbeat for this many of its intervals is
#: reported ``stale`` by the API: one lost heartbeat (QoS 0) is no alarm, two
#: in a row begin to be, three are the agent or its link in trouble.
STALE_AFTER_HEARTBEATS = 3

#: A read batch whose seq is this far past what its stream expects restarts the
#: stream there instead of being held for (and asking for) the seqs in between:
#: an agent sends a few hundred batches a minute, so a jump of a million is a
#: reset or corrupted counter, never a backlog.
MAX_SEQ_JUMP = 1_000_000

#: The caller's handle for acknowledging one message to its transport, opaque to
#: the ingestor (the service's: connection number, MQTT mid, QoS).  Each comes
#: back in the ``Work`` that holds the message's effects, to be acknowledged only
#: after that work is committed.
Receipt = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    qos: int = 1


class StoreLost(Exception):
    """The store was handed to another gateway while its writes were pending."""


@dataclass(slots=True)
class _Batch:
    record: BatchRecord
    transitions: list[Transition]
    ack_topic: str
    newest_us: int | None  # newest read, host clock (for the lag metric)
    gaps: list[tuple[str, int]]
    topic: str  # and payload: for the dead letter, should the ledger refuse the batch
    payload: bytes


@dataclass(slots=True)
class _Arrival:
    """A read batch held back by the reorder buffer (``gateway.reorder``), with what it takes to process it."""

    topic: str
    store_id: str
    reader_id: str
    payload: bytes
    key: BatchKey
    receipt: Receipt | None
    received_at_us: int


@dataclass(slots=True)
class _Segment:
    batches: list[_Batch] | None  # a run of read batches; None: free transitions
    transitions: list[Transition] = field(default_factory=list)
    observations: int = 0  # sightings behind free transitions (reader-published formats)


@dataclass(slots=True)
class Work:
    """What one group of messages (or one tick) writes, and the replies that follow the commit."""

    stores: dict[str, list[_Segment]] = field(default_factory=dict)
    replies: list[Outgoing] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    statuses: list[ReaderStatusRecord] = field(default_factory=list)
    heartbeats: dict[str, ReaderHeartbeatRecord] = field(default_factory=dict)  # the newest per reader
    health: list[Step] = field(default_factory=list)  # antenna_health rows (gateway.antennas)
    rates: list[Step] = field(default_factory=list)  # learned read rates (gateway.read_rates)
    receipts: list[Receipt] = field(default_factory=list)  # acknowledge these after the commit
    messages: int = 0

    def __bool__(self) -> bool:
        return bool(
            self.stores
            or self.replies
            or self.rejects
            or self.statuses
            or self.heartbeats
            or self.health
            or self.rates
            or self.receipts
        )

    def _segment(self, store_id: str, batches: bool) -> _Segment:
        segments = self.stores.setdefault(store_id, [])
        if segments and (segments[-1].batches is not None) == batches:
            return segments[-1]
        segment = _Segment([] if batches else None)
        segments.append(segment)
        return segment


class Ingestor:
    def __init__(
        self,
        site: Site,
        ledger: LedgerWriter,
        topics: Topics,
        clock: Clock,
        metrics: GatewayMetrics | None = None,
        stores: Sequence[str] | None = None,
        *,
        ledger_for: Callable[[str], LedgerWriter] | None = None,
        reorder_wait_s: float = 0.0,
        reorder_max_held: int = 64,
        monotonic: Clock | None = None,
        clock_skew_s: float = DEFAULT_CLOCK_SKEW_S,
    ) -> None:
        self.site = site
        self.ledger = ledger
        self.topics = topics
        self.clock = clock
        self.metrics = metrics or GatewayMetrics()
        self._site_stores = {s.id: s for s in site.stores}
        wanted = set(stores) if stores else set(self._site_stores)
        unknown = wanted - set(self._site_stores)
        if unknown:
            raise ValueError(f"stores not in the site file: {', '.join(sorted(unknown))}")
        self.trackers: dict[str, StoreTracker] = {}
        self._initial = sorted(wanted)
        self._ledger_for = ledger_for or (lambda _store: ledger)
        self._index = BatchIndex()
        # Batches ahead of a hole in their stream wait here for their
        # predecessors (gateway.reorder); off (None) with no wait, e.g. for tools
        # that feed batches without a runtime to release them.
        self._monotonic = monotonic or MonotonicClock()
        self._order: Reorder[_Arrival] | None = None
        if reorder_wait_s > 0:
            self._order = Reorder(reorder_wait_s, reorder_max_held, self._monotonic, self._held_metric)
        self._stray: list[Receipt] = []  # receipts of held messages dropped unprocessed, to acknowledge
        self._readers_down: set[str] = set()
        # reader -> when it is stale without another heartbeat (gateway clock); offline readers are not here.
        self._stale_at: dict[str, int] = {}
        self._skew_us = round(clock_skew_s * US_PER_S)
        self._rates_saved_us = clock.now_us()
        self._diverged: set[str] = set()  # stores whose memory the ledger refused (see resync)

    # ------------------------------------------------------------------ #
    # Stores

    async def load(self) -> None:
        """Take every configured store: rebuild its state machine from the ledger."""
        for store_id in self._initial:
            await self.add_store(store_id)

    async def add_store(self, store_id: str) -> None:
        """Start ingesting a store: its items from the ledger; its batch streams re-learnt."""
        tracker = StoreTracker(self._site_stores[store_id], self.clock)
        tracker.load(await self._retrying(lambda: self._ledger_for(store_id).load_items(store_id)))
        tracker.load_rates(await self._retrying(lambda: load_rates(self._ledger_for(store_id), store_id)))
        self._forget_readers(store_id)
        statuses = await self._retrying(lambda: self._ledger_for(store_id).reader_statuses(store_id))
        listed = {r.id for r in self._site_stores[store_id].readers}  # as the API: a removed reader is not shown
        self._stale_at.update(
            {
                r.reader_id: r.stale_at_us
                for r in statuses
                if r.stale_at_us and r.state != "offline" and r.reader_id in listed
            }
        )
        self.trackers[store_id] = tracker
        self._items_gauge()

    def drop_store(self, store_id: str) -> None:
        """Stop ingesting a store (another gateway holds it now)."""
        if self.trackers.pop(store_id, None) is not None:
            self._forget_readers(store_id)
            self._items_gauge()

    def _forget_readers(self, store_id: str) -> None:
        readers = {r.id for r in self._site_stores[store_id].readers}
        self._index.forget_readers(readers)
        for reader_id in readers:  # their heartbeats now go to the store's holder: never stale here
            self._stale_at.pop(reader_id, None)
        if self._order is not None:
            # What they held is not processed here: the store's next holder gets
            # the agents' re-sends, in order.  The messages are acknowledged to the
            # broker like any other message of a store not held.
            self._stray += [a.receipt for a in self._order.forget_readers(readers) if a.receipt is not None]
            self.metrics.held_now.set(self._order.held)

    # ------------------------------------------------------------------ #
    # Step 1: prepare (state machines, in arrival order)

    async def prepare(
        self,
        messages: Sequence[tuple[str, bytes]],
        work: Work | None = None,
        receipts: Sequence[Receipt] | None = None,
    ) -> Work:
        """Prepare messages in arrival order into ``work``.

        ``receipts`` (one per message, optional) come back in the work that
        holds each message's effects: this one, or a later one for a batch the
        reorder buffer holds (:meth:`release_due`).
        """
        work = work if work is not None else Work()
        if self._diverged:
            await self.resync()
        if self._stray:
            work.receipts += self._stray
            self._stray = []
        for i, (topic, payload) in enumerate(messages):
            receipt = receipts[i] if receipts is not None else None
            work.messages += 1
            try:
                if await self._prepare_one(work, topic, payload, receipt):
                    continue  # a read batch that went through the reorder buffer took its receipt
            except StoreLost:
                pass
            except Exception as exc:
                # Whatever escaped the checks: this message goes to the dead letter,
                # alone, and the rest of the group goes on.  Otherwise it would stay
                # unacknowledged, the broker would deliver it again after every
                # restart, and enough of them would fill the in-flight window.
                self._unprocessable(work, topic, payload, exc)
            if receipt is not None:
                work.receipts.append(receipt)
        return work

    def tick(self, work: Work | None = None) -> Work:
        """Run silence timers; their transitions join ``work`` after what is already there."""
        work = work if work is not None else Work()
        if self._stray:
            work.receipts += self._stray
            self._stray = []
        now = self.clock.now_us()
        self.metrics.readers_stale.set(sum(1 for due in self._stale_at.values() if now > due))
        save_rates = now - self._rates_saved_us >= SAVE_EVERY_US
        if save_rates:
            self._rates_saved_us = now
        for store_id, tracker in self.trackers.items():
            if save_rates:
                work.rates += save_steps(tracker.changed_rates(), now)
            transitions = tracker.tick()
            if transitions:
                work._segment(store_id, batches=False).transitions.extend(transitions)
        return work

    @property
    def holding(self) -> bool:
        """Whether the reorder buffer holds batches (:meth:`release_due` will have work)."""
        return self._order is not None and self._order.held > 0

    def next_release_s(self) -> float | None:
        """Seconds until :meth:`release_due` has batches to release (<= 0: now), or None if none are held."""
        due = self._order.next_due_us() if self._order is not None else None
        return None if due is None else (due - self._monotonic.now_us()) / US_PER_S

    async def release_due(self, work: Work) -> None:
        """Prepare the held batches whose wait is over into ``work`` (their holes are given up)."""
        if self._order is not None:
            await self._take_all(work, self._order.due())

    async def _prepare_one(self, work: Work, topic: str, payload: bytes, receipt: Receipt | None) -> bool:
        """Prepare one message; True if its receipt was taken care of (a held read batch)."""
        parsed = self.topics.parse(topic)
        if parsed is None:
            self._reject(work, topic, payload, "unknown_topic", "not a tagledger v1 topic")
            return False
        store_id, reader_id, kind = parsed
        if store_id not in self.trackers:
            if store_id not in self._site_stores:
                self._reject(work, topic, payload, "unknown_store", f"store {store_id!r} is not in the site")
            return False  # another gateway's store
        if kind == "reads":
            return await self._reads(work, topic, store_id, reader_id, payload, receipt)
        if kind == "status":
            self._status(work, topic, store_id, reader_id, payload)
        elif kind == "transactions" and reader_id == "_pos":
            self._pos(work, topic, store_id, payload)
        elif kind in ("impinj", "zebra"):
            self._reader_payload(work, topic, store_id, reader_id, kind, payload)
        elif kind == "heartbeat":
            self._heartbeat(work, topic, store_id, reader_id, payload)
        elif kind != "ack":
            self._reject(work, topic, payload, "unknown_topic", f"unknown message kind {kind!r}")
        return False

    async def _reads(
        self,
        work: Work,
        topic: str,
        store_id: str,
        reader_id: str,
        payload: bytes,
        receipt: Receipt | None,
        released: _Arrival | None = None,
    ) -> bool:
        """Prepare one read batch; True if it was held (its receipt went with it).

        ``released``: the batch comes out of the reorder buffer, in order.
        """
        try:
            batch = decode_batch(payload)
        except WireError as exc:
            self._reject(work, topic, payload, exc.reason, exc.detail)
            return False
        key = BatchKey(batch.reader_id, batch.boot_id, batch.seq)
        if (batch.store_id, key.reader_id) != (store_id, reader_id):
            detail = f"payload is for {batch.store_id}/{key.reader_id}, topic for {store_id}/{reader_id}"
            self._reject(work, topic, payload, "topic_mismatch", detail, ack=(batch.store_id, key))
            return False
        index = self._index
        order = self._order
        stream = (key.reader_id, key.boot_id)
        if not index.known(key.reader_id, key.boot_id):
            high = await self._retrying(
                lambda: self._ledger_for(store_id).max_seq(key.reader_id, key.boot_id), store_id
            )
            index.start(key.reader_id, key.boot_id, high)
            if order is not None:
                order.start(stream, 0 if high is None else high + 1)
        if order is not None and released is None:
            if _jumped(order, stream, key.seq):
                if self._refused(work, topic, payload, batch, store_id, key):
                    return False  # a refused batch does not restart its stream
                self.metrics.seq_jumps.inc()
                log.warning(
                    "reader %s boot %s jumped to seq %d (expected %d): its stream restarts there",
                    key.reader_id,
                    key.boot_id,
                    key.seq,
                    order.next_seq(stream),
                )
                await self._take_all(work, order.restart(stream, key.seq))
            if not order.admit(stream, key.seq):
                # Ahead of a hole (held), or filling one (let through with its successors).
                return await self._out_of_order(work, order, topic, store_id, reader_id, payload, receipt, batch, key)
        verdict = index.classify(key)
        if verdict == "check":
            found = await self._retrying(lambda: self._ledger_for(store_id).has_batch(key), store_id)
            if found:
                index.committed(key)
            verdict = "duplicate" if found else "new"
        if verdict != "new":
            self.metrics.batches.labels("duplicate").inc()
            if verdict == "duplicate":
                work.replies.append(self._ack(store_id, key, "duplicate"))
            # "pending": the same key is being committed; its ack answers this copy too.
            return False
        # Vetted after de-duplication: a copy of a batch already taken costs no vetting.
        try:
            newest, dropped = check_batch(batch, self.clock.now_us() + self._skew_us)
            zones = antenna_zones(batch, self.site)
        except FormatError as exc:
            self._reject(work, topic, payload, exc.reason, exc.detail, ack=(store_id, key))
            return False
        observations = batch.observations
        transitions = self.trackers[store_id].observe_reads(
            reader_id, observations, zones, batch.clock_offset_us, key, newest_us=newest
        )
        index.prepared(key)
        gaps = batch.gaps
        record = BatchRecord(
            key=key,
            store_id=store_id,
            observations=len(observations),
            sent_at_us=batch.sent_at_us,
            received_at_us=self.clock.now_us() if released is None else released.received_at_us,
            gaps=dropped,
        )
        segment = work._segment(store_id, batches=True)
        assert segment.batches is not None
        segment.batches.append(
            _Batch(
                record,
                transitions,
                self.topics.ack(store_id, reader_id),
                newest,
                [(g.reason, g.dropped_reads) for g in gaps] if gaps else [],
                topic,
                payload,
            )
        )
        return False

    def _refused(self, work: Work, topic: str, payload: bytes, batch: Batch, store_id: str, key: BatchKey) -> bool:
        """Would vetting refuse this batch?  If so it is dead-lettered now (off the fast path: not let through)."""
        try:
            check_batch(batch, self.clock.now_us() + self._skew_us)
            antenna_zones(batch, self.site)
        except FormatError as exc:
            self._reject(work, topic, payload, exc.reason, exc.detail, ack=(store_id, key))
            return True
        return False

    async def _out_of_order(
        self,
        work: Work,
        order: Reorder[_Arrival],
        topic: str,
        store_id: str,
        reader_id: str,
        payload: bytes,
        receipt: Receipt | None,
        batch: Batch,
        key: BatchKey,
    ) -> bool:
        """A batch the fast path did not let through: hold it, or let it through with what it unblocks."""
        stream = (key.reader_id, key.boot_id)
        arrival = _Arrival(topic, store_id, reader_id, payload, key, receipt, self.clock.now_us())
        if self._refused(work, topic, payload, batch, store_id, key):
            # Refused whatever comes before it: nobody waits for it, and it does not wait either.
            await self._take_all(work, order.offer(stream, key.seq, None))
            if receipt is not None:
                work.receipts.append(receipt)
            return True
        released = order.offer(stream, key.seq, arrival)
        await self._take_all(work, released)
        if all(a is not arrival for a in released):  # held: ask for what it waits for
            for seq in order.missing(stream):
                missing = BatchKey(reader_id=key.reader_id, boot_id=key.boot_id, seq=seq)
                work.replies.append(self._ack(store_id, missing, "resend"))
                self.metrics.resend_requests.inc()
        return True

    async def _take_all(self, work: Work, arrivals: list[_Arrival]) -> None:
        """Prepare batches the reorder buffer let go, in its order; their receipts join ``work``."""
        for a in arrivals:
            if a.store_id in self.trackers:
                try:
                    # Held as the bytes that arrived (in memory anyway): decoded again, off the fast path.
                    await self._reads(work, a.topic, a.store_id, a.reader_id, a.payload, None, released=a)
                except StoreLost:
                    pass  # dropped unprocessed; the agent re-sends it to the store's new gateway
                except Exception as exc:
                    self._unprocessable(work, a.topic, a.payload, exc)
            # Only once prepared (or dropped for good): if _reads raises, the batches not yet
            # prepared are not PUBACKed with this group, so the broker delivers them again.
            if a.receipt is not None:
                work.receipts.append(a.receipt)
        if self._order is not None:
            self.metrics.held_now.set(self._order.held)

    def _status(self, work: Work, topic: str, store_id: str, reader_id: str, payload: bytes) -> None:
        try:
            status = decode_as(ReaderStatus, payload)
            check_status(status, self.clock.now_us() + self._skew_us)
        except (WireError, FormatError) as exc:
            self._reject(work, topic, payload, exc.reason, exc.detail)
            return
        tracker = self.trackers[store_id]
        if status.state is ReaderState.ONLINE:
            self._readers_down.discard(reader_id)
            tracker.reader_up(reader_id, status.at_us)
        else:
            self._readers_down.add(reader_id)
            tracker.reader_down(reader_id, status.at_us)
            if status.state is ReaderState.OFFLINE:
                self._stale_at.pop(reader_id, None)  # gone, not stale: no heartbeat is expected
        for port in status.antennas_down:
            tracker.antenna_down(reader_id, port, status.at_us)
        self.metrics.readers_down.set(len(self._readers_down))
        try:
            reader = self.site.store(store_id).reader(reader_id)
        except KeyError:
            reader = None
        work.health.extend(status_steps(status, reader))
        work.statuses.append(
            ReaderStatusRecord(
                reader_id=reader_id,
                store_id=store_id,
                state=status.state.value,
                at_us=status.at_us,
                detail=status.detail,
                last_will=status.last_will,
            )
        )

    def _heartbeat(self, work: Work, topic: str, store_id: str, reader_id: str, payload: bytes) -> None:
        try:
            beat = decode_as(Heartbeat, payload)
            check_heartbeat(beat, self.clock.now_us() + self._skew_us)
        except (WireError, FormatError) as exc:
            self._reject(work, topic, payload, exc.reason, exc.detail)
            return
        stale_at = None
        if beat.interval_s is not None:
            stale_at = self.clock.now_us() + round(STALE_AFTER_HEARTBEATS * beat.interval_s * US_PER_S)
            self._stale_at[reader_id] = max(stale_at, self._stale_at.get(reader_id, 0))
        newest = work.heartbeats.get(reader_id)
        if newest is None or newest.at_us <= beat.at_us:
            work.heartbeats[reader_id] = ReaderHeartbeatRecord(reader_id, store_id, beat.at_us, stale_at)
        work.health.extend(heartbeat_steps(beat))

    def _pos(self, work: Work, topic: str, store_id: str, payload: bytes) -> None:
        try:
            tx = decode_as(PosTransaction, payload)
            check_pos(tx, self.clock.now_us() + self._skew_us)
        except (WireError, FormatError) as exc:
            self._reject(work, topic, payload, exc.reason, exc.detail)
            return
        if tx.store_id != store_id:
            self._reject(work, topic, payload, "topic_mismatch", f"transaction is for store {tx.store_id}")
            return
        transitions = self.trackers[store_id].pos_transaction(tx)
        if transitions:
            work._segment(store_id, batches=False).transitions.extend(transitions)

    def _reader_payload(self, work: Work, topic: str, store_id: str, reader_id: str, kind: str, payload: bytes) -> None:
        """An Impinj or Zebra reader publishing MQTT itself: at-least-once, no batch key.

        These formats carry no sequence numbers, so there is nothing to ack and
        nothing to de-duplicate by key; the state machine is idempotent for a
        repeated sighting, which makes a redelivery harmless.
        """
        try:
            parsed = parse_reader_payload(
                kind,
                payload,
                self.site,
                store_id=store_id,
                reader_id=reader_id,
                not_after_us=self.clock.now_us() + self._skew_us,
            )
        except FormatError as exc:
            self._reject(work, topic, payload, exc.reason, exc.detail)
            return
        m = self.metrics
        m.reader_payloads.labels(parsed.format).inc()
        for skipped in parsed.skipped:
            m.skipped_events.labels(skipped.reason).inc()
            log.info("skipped one event on %s: %s", topic, skipped)
        for gap in parsed.gaps:
            m.gap_events.labels(gap.reason).inc()
            if gap.dropped:
                m.gaps.labels(gap.reason).inc(gap.dropped)
        tracker = self.trackers[store_id]
        for event in parsed.health:
            tracker.health(event)
        transitions = tracker.observe(parsed.sightings, None)
        segment = work._segment(store_id, batches=False)
        segment.transitions.extend(transitions)
        segment.observations += len(parsed.sightings)

    # ------------------------------------------------------------------ #
    # Step 2: commit (one transaction per run of batches), then replies

    async def commit(self, work: Work) -> list[Outgoing]:
        """Write ``work``; returns the replies to publish.  Raises only when the process must stop.

        A transient database fault is retried here until the database is back
        (the caller acknowledges nothing meanwhile).  A write the ledger refuses
        for good costs that write only: a batch goes to the dead letter
        (``ledger_refused``), a dead letter, status or heartbeat is logged.
        """
        for reject in work.rejects:
            await self._keeping(lambda r=reject: self.ledger.record_reject(r), "a dead letter")  # type: ignore[misc]
        for status in work.statuses:
            with contextlib.suppress(StoreLost):  # the store's new gateway gets the next one
                await self._keeping(
                    lambda s=status: self.ledger.record_reader_status(s),  # type: ignore[misc]
                    "a reader status",
                    status.store_id,
                )
        for beat in work.heartbeats.values():
            with contextlib.suppress(StoreLost):
                await self._keeping(
                    lambda b=beat: self.ledger.record_reader_heartbeat(b),  # type: ignore[misc]
                    "a heartbeat",
                    beat.store_id,
                )
        if work.health:
            steps = work.health
            await self._keeping(lambda: self.ledger.execute_all(steps), "antenna health")
        if work.rates:
            rates = work.rates
            await self._keeping(lambda: self.ledger.execute_all(rates), "read rates")
        replies = list(work.replies)
        if len(work.stores) == 1:
            for store_id, segments in work.stores.items():
                replies += await self._commit_store(store_id, segments)
        elif work.stores:
            # Stores are independent: commit them side by side (each has its own
            # connection when stores are leased; see gateway.leases).
            parts = await asyncio.gather(*(self._commit_store(s, segs) for s, segs in work.stores.items()))
            for part in parts:
                replies += part
        self._items_gauge()
        return replies

    async def _commit_store(self, store_id: str, segments: list[_Segment]) -> list[Outgoing]:
        replies: list[Outgoing] = []
        ledger = self._ledger_for(store_id)
        m = self.metrics
        for i, segment in enumerate(segments):
            try:
                if segment.batches is None:
                    if segment.transitions:
                        ts = segment.transitions
                        if await self._keeping(lambda ts=ts: ledger.commit_transitions(ts), "transitions", store_id):  # type: ignore[misc]
                            self._count(segment.transitions)
                        else:
                            self._diverged.add(store_id)
                    m.observations.inc(segment.observations)
                    continue
                batches = segment.batches
                results: list[CommitResult | None]
                try:
                    results = list(
                        await self._retrying(
                            lambda b=batches: ledger.commit_batches([(x.record, x.transitions) for x in b]),  # type: ignore[misc]
                            store_id,
                        )
                    )
                except StoreLost:
                    raise
                except Exception as exc:
                    # Refused for good (vetting should make this impossible): find
                    # the batches the ledger refuses, one by one.
                    log.error("the ledger refused a group of %d batches of %s: %s", len(batches), store_id, exc)
                    results = [await self._commit_alone(ledger, b, store_id) for b in batches]
            except StoreLost:
                self._abandon(segments[i:])
                log.warning("store %s was taken over with writes pending; its agents will re-send", store_id)
                return replies
            now = self.clock.now_us()
            for b, result in zip(batches, results, strict=True):
                key = b.record.key
                if result is None:
                    # Dead-lettered, and its transitions are not in the ledger: the
                    # state machine is rebuilt from the ledger before the next prepare.
                    self._diverged.add(store_id)
                    self._index.abandoned(key)
                    m.batches.labels("rejected").inc()
                    dead = Work()
                    self._reject(
                        dead, b.topic, b.payload, "ledger_refused", "the ledger refused it", ack=(store_id, key)
                    )
                    for reject in dead.rejects:
                        await self._keeping(lambda r=reject: self.ledger.record_reject(r), "a dead letter")  # type: ignore[misc]
                    replies += dead.replies
                    continue
                self._index.committed(key)
                m.batches.labels(result.value).inc()
                if result is CommitResult.COMMITTED:
                    m.observations.inc(b.record.observations)
                    self._count(b.transitions)
                    for reason, dropped in b.gaps:
                        m.gaps.labels(reason).inc(dropped)
                    if b.newest_us is not None:
                        m.commit_lag.observe(max(0.0, (now - b.newest_us) / US_PER_S))
                elif b.transitions:
                    log.warning("batch %s was committed elsewhere meanwhile; state rebuilt at next take-over", key)
                ack = Ack(reader_id=key.reader_id, boot_id=key.boot_id, seq=key.seq, result=result.value)
                replies.append(Outgoing(b.ack_topic, encode(ack)))
        return replies

    async def _commit_alone(self, ledger: LedgerWriter, b: _Batch, store_id: str) -> CommitResult | None:
        """One batch in its own transaction; None if the ledger refuses it for good."""
        try:
            [result] = await self._retrying(lambda: ledger.commit_batches([(b.record, b.transitions)]), store_id)
        except StoreLost:
            raise
        except Exception as exc:
            log.error("the ledger refused batch %s: %s", b.record.key, exc)
            return None
        return result

    async def _keeping(self, op: Callable[[], Awaitable[object]], what: str, store_id: str | None = None) -> bool:
        """Run a ledger write, retrying transient faults; False (logged) if it is refused for good."""
        try:
            await self._retrying(op, store_id)
        except StoreLost:
            raise
        except Exception as exc:
            log.error("the ledger refused %s for good: %s", what, exc)
            return False
        return True

    async def resync(self) -> None:
        """Rebuild from the ledger the state machines whose effects the ledger refused (call between prepares).

        A refused write means the state machine applied transitions the ledger
        does not have; reloading the store's items makes memory equal the
        ledger again.  Transitions prepared meanwhile from the old state are
        committed as prepared.
        """
        for store_id in sorted(self._diverged):
            if store_id in self.trackers:
                log.warning("rebuilding store %s from the ledger after a refused write", store_id)
                await self.add_store(store_id)
        self._diverged.clear()

    def _held_metric(self, outcome: str, n: int) -> None:
        if outcome == "skipped":
            self.metrics.skipped_seqs.inc(n)
        else:
            self.metrics.held_batches.labels(outcome).inc(n)

    def _abandon(self, segments: list[_Segment]) -> None:
        for segment in segments:
            for b in segment.batches or ():
                self._index.abandoned(b.record.key)

    async def handle(self, topic: str, payload: bytes) -> list[Outgoing]:
        """Prepare and commit one message (tests, tools)."""
        return await self.commit(await self.prepare([(topic, payload)]))

    # ------------------------------------------------------------------ #

    def _ack(self, store_id: str, key: BatchKey, result: AckResult) -> Outgoing:
        ack = Ack(reader_id=key.reader_id, boot_id=key.boot_id, seq=key.seq, result=result)
        return Outgoing(self.topics.ack(store_id, key.reader_id), encode(ack))

    def _count(self, transitions: Sequence[Transition]) -> None:
        counter = self.metrics.transitions
        for t in transitions:
            counter.labels(t.to_state.value).inc()

    def _items_gauge(self) -> None:
        self.metrics.items.set(sum(len(t) for t in self.trackers.values()))

    def _reject(
        self,
        work: Work,
        topic: str,
        payload: bytes,
        reason: str,
        detail: str,
        *,
        ack: tuple[str, BatchKey] | None = None,
    ) -> None:
        """Dead-letter a payload: keep it (bounded) with its reason, tell the broker, carry on.

        When the payload was a parseable batch, the agent is told ``rejected`` so it
        stops re-sending something that can never be ingested; the batch is kept in
        the rejects table, so nothing is lost.  Both go out after the reject is
        written.
        """
        now = self.clock.now_us()
        kept = payload[:MAX_REJECT_BYTES]
        detail = detail.replace("\x00", "\\x00")  # a text column: no NUL (the payload is kept as bytes)
        log.warning("rejected payload on %s: %s: %s", topic, reason, detail)
        self.metrics.rejects.labels(reason).inc()
        work.rejects.append(Reject(reason=reason, detail=detail, topic=topic, payload=kept, received_at_us=now))
        letter = {
            "reason": reason,
            "detail": detail,
            "topic": topic,
            "received_at_us": now,
            "payload_b64": base64.b64encode(kept).decode(),
            "payload_truncated": len(payload) > len(kept),
        }
        work.replies.append(Outgoing(self.topics.dead_letter(reason), json.dumps(letter).encode()))
        if ack is not None:
            work.replies.append(self._ack(*ack, "rejected"))

    def _unprocessable(self, work: Work, topic: str, payload: bytes, exc: Exception) -> None:
        """A message whose preparation raised past every check: a bug, logged as one, and a dead letter."""
        log.error("could not prepare a message on %s", topic, exc_info=exc)
        detail = f"{type(exc).__name__}: {exc}"[:500]
        self._reject(work, topic, payload, "unprocessable", detail)

    async def _retrying(self, op: Callable[[], Awaitable[T]], store_id: str | None = None) -> T:
        """Run a ledger call, retrying while the database is unavailable.

        Ingestion blocks meanwhile: the messages stay unacknowledged, so the
        agents keep them in their spools, and nothing later overtakes them.  A
        call for a store this gateway stopped holding gives up (``StoreLost``):
        its new holder will get the agents' re-sends.
        """
        delays = backoff_delays(initial=0.2, maximum=10.0)
        while True:
            if store_id is not None and store_id not in self.trackers:
                raise StoreLost(store_id)
            try:
                return await op()
            except LedgerUnavailable as exc:
                delay = next(delays)
                log.warning("ledger unavailable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)


def _jumped(order: Reorder[_Arrival], stream: tuple[str, str], seq: int) -> bool:
    """Is ``seq`` further ahead of what its (known) stream expects than any backlog could be?"""
    return order.known(stream) and seq > order.next_seq(stream) + MAX_SEQ_JUMP
