"""From MQTT messages to ledger writes and the replies they call for: the routing.

:class:`Ingestor` is the gateway minus the network.  It routes each message by
its topic: read batches to :class:`gateway.ordering.BatchIntake` (ordering,
de-duplication, vetting), statuses, heartbeats, POS transactions and
reader-published formats to the store's state machine here; the writes go
through :class:`gateway.commit.Committer` (commit retries, dead letters).  It
works in two steps so that the runtime (``gateway.service``) can overlap them:

``prepare(messages) -> Work``
    validates each message, runs the store's state machine and collects what
    to write (``gateway.work``: per store, an ordered list of *segments*),
    dead letters and reader statuses.  Messages are prepared in arrival order,
    one group at a time; a batch held for a missing predecessor when its hold
    ends (``release_due`` for the holds that wait out).
``commit(work) -> list[Outgoing]``
    writes it (each run of batches is ONE ledger transaction) and returns the
    acks and dead letters to publish.

Exactly-once effect
    A batch's ledger rows and its ``(reader, boot, seq)`` key commit in one
    transaction; the ack that lets the agent drop the batch from its spool is
    returned only after that commit.  A gateway killed at any instant therefore
    either committed the batch (the agent re-sends, the key is known, the reply
    is ``duplicate``) or did not (the agent re-sends and it is committed now).
    Inside a group, a key repeated is recognised before the state machine sees
    it again (``pending``), and the ledger's insert-first settles it anyway.

Ordering
    Each reader's batches are prepared in ``seq`` order (``gateway.ordering``).
    Works are committed one after the other, in the order they were prepared,
    and a store's segments in their order; a segment's transitions are in
    state-machine order.  So the ledger sees each item's transitions in the
    order the state machine made them, whatever the grouping.  The state
    machine runs ahead of the ledger by at most the work being committed; if a
    commit fails transiently it is retried with the *same* transitions, and if
    the process dies the state machine is rebuilt from the ledger at start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from gateway import anomaly_store
from gateway.antennas import heartbeat_steps, status_steps
from gateway.commit import Committer, Replies
from gateway.dedup import BatchIndex
from gateway.formats import parse_reader_payload
from gateway.metrics import GatewayMetrics
from gateway.ordering import BatchIntake
from gateway.read_rates import SAVE_EVERY_US, load_rates, save_steps
from gateway.records import FormatError
from gateway.state import StoreTracker
from gateway.vetting import DEFAULT_CLOCK_SKEW_S, check_heartbeat, check_pos, check_status
from gateway.work import Outgoing, Receipt, StoreLost, Work
from tagledger.clock import US_PER_S, Clock, MonotonicClock
from tagledger.ledger.model import ReaderHeartbeatRecord, ReaderStatusRecord
from tagledger.ledger.repository import LedgerWriter
from tagledger.site import Site, Store
from tagledger.wire import Heartbeat, PosTransaction, ReaderState, ReaderStatus, Topics, WireError, decode_as

log = logging.getLogger(__name__)

#: A reader whose agent sent no heartbeat for this many of its intervals is
#: reported ``stale`` by the API: one lost heartbeat (QoS 0) is no alarm, two
#: in a row begin to be, three are the agent or its link in trouble.
STALE_AFTER_HEARTBEATS = 3

#: Makes a store's state machine (tests and tools inject their own; the runtime the default).
TrackerFactory = Callable[[Store, Clock], StoreTracker]


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
        tracker_factory: TrackerFactory = StoreTracker,
    ) -> None:
        self.site = site
        self.ledger = ledger
        self.topics = topics
        self.clock = clock
        self.metrics = metrics = metrics or GatewayMetrics()
        self._site_stores = {s.id: s for s in site.stores}
        wanted = set(stores) if stores else set(self._site_stores)
        unknown = wanted - set(self._site_stores)
        if unknown:
            raise ValueError(f"stores not in the site file: {', '.join(sorted(unknown))}")
        self.trackers: dict[str, StoreTracker] = {}
        self._new_tracker = tracker_factory
        self._initial = sorted(wanted)
        self._ledger_for = ledger_for or (lambda _store: ledger)
        self._skew_us = round(clock_skew_s * US_PER_S)
        index = BatchIndex()
        self._replies = Replies(topics, clock, metrics)
        self._committer = Committer(ledger, self._ledger_for, self.trackers, index, self._replies, metrics)
        self._retrying = self._committer.retrying
        self._intake = BatchIntake(
            site,
            topics,
            clock,
            metrics,
            self.trackers,
            index,
            self._replies,
            ledger_for=self._ledger_for,
            committer=self._committer,
            not_after_us=self._not_after_us,
            reorder_wait_s=reorder_wait_s,
            reorder_max_held=reorder_max_held,
            monotonic=monotonic or MonotonicClock(),
        )
        self._readers_down: set[str] = set()
        # reader -> when it is stale without another heartbeat (gateway clock); offline readers are not here.
        self._stale_at: dict[str, int] = {}
        self._rates_saved_us = clock.now_us()
        self._anomalies_saved_us = clock.now_us()

    # ------------------------------------------------------------------ #
    # Stores

    async def load(self) -> None:
        """Take every configured store: rebuild its state machine from the ledger."""
        for store_id in self._initial:
            await self.add_store(store_id)

    async def add_store(self, store_id: str) -> None:
        """Start ingesting a store: its items from the ledger; its batch streams re-learnt."""
        tracker = self._new_tracker(self._site_stores[store_id], self.clock)
        tracker.load(await self._retrying(lambda: self._ledger_for(store_id).load_items(store_id)))
        tracker.load_rates(await self._retrying(lambda: load_rates(self._ledger_for(store_id), store_id)))
        ledger = self._ledger_for(store_id)
        tracker.anomalies.restore(await self._retrying(lambda: anomaly_store.load_anomalies(ledger, store_id)))
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
        self._committer.items_gauge()

    def drop_store(self, store_id: str) -> None:
        """Stop ingesting a store (another gateway holds it now)."""
        if self.trackers.pop(store_id, None) is not None:
            self._forget_readers(store_id)
            self._committer.items_gauge()

    def _forget_readers(self, store_id: str) -> None:
        readers = {r.id for r in self._site_stores[store_id].readers}
        self._intake.forget_readers(readers)
        for reader_id in readers:  # their heartbeats now go to the store's holder: never stale here
            self._stale_at.pop(reader_id, None)

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
        if self._committer.diverged:
            await self.resync()
        self._take_stray(work)
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
                self._replies.unprocessable(work, topic, payload, exc)
            if receipt is not None:
                work.receipts.append(receipt)
        return work

    def tick(self, work: Work | None = None) -> Work:
        """Run silence timers; their transitions join ``work`` after what is already there."""
        work = work if work is not None else Work()
        self._take_stray(work)
        now = self.clock.now_us()
        self.metrics.readers_stale.set(sum(1 for due in self._stale_at.values() if now > due))
        save_rates = now - self._rates_saved_us >= SAVE_EVERY_US
        if save_rates:
            self._rates_saved_us = now
        save_anomalies = now - self._anomalies_saved_us >= anomaly_store.SAVE_EVERY_US
        if save_anomalies:
            self._anomalies_saved_us = now
        for store_id, tracker in self.trackers.items():
            if save_rates:
                work.rates += save_steps(tracker.changed_rates(), now)
            if save_anomalies:
                work.anomalies += anomaly_store.save_steps(tracker.anomalies.changed(), now)
            transitions = tracker.tick()
            if transitions:
                work.segment(store_id, batches=False).transitions.extend(transitions)
        return work

    def _take_stray(self, work: Work) -> None:
        """Receipts of held messages dropped unprocessed (their store changed hands): acknowledged with ``work``."""
        intake = self._intake
        if intake.stray:
            work.receipts += intake.stray
            intake.stray = []

    @property
    def holding(self) -> bool:
        """Whether the reorder buffer holds batches (:meth:`release_due` will have work)."""
        return self._intake.holding

    def next_release_s(self) -> float | None:
        """Seconds until :meth:`release_due` has batches to release (<= 0: now), or None if none are held."""
        return self._intake.next_release_s()

    async def release_due(self, work: Work) -> None:
        """Prepare the held batches whose wait is over into ``work`` (their holes are given up)."""
        await self._intake.release_due(work)

    async def _prepare_one(self, work: Work, topic: str, payload: bytes, receipt: Receipt | None) -> bool:
        """Prepare one message; True if its receipt was taken care of (a held read batch)."""
        parsed = self.topics.parse(topic)
        if parsed is None:
            self._replies.reject(work, topic, payload, "unknown_topic", "not a tagledger v1 topic")
            return False
        store_id, reader_id, kind = parsed
        if store_id not in self.trackers:
            if store_id not in self._site_stores:
                self._replies.reject(work, topic, payload, "unknown_store", f"store {store_id!r} is not in the site")
            return False  # another gateway's store
        if kind == "reads":
            return await self._intake.reads(work, topic, store_id, reader_id, payload, receipt)
        if kind == "status":
            self._status(work, topic, store_id, reader_id, payload)
        elif kind == "transactions" and reader_id == "_pos":
            self._pos(work, topic, store_id, payload)
        elif kind in ("impinj", "zebra"):
            self._reader_payload(work, topic, store_id, reader_id, kind, payload)
        elif kind == "heartbeat":
            self._heartbeat(work, topic, store_id, reader_id, payload)
        elif kind != "ack":
            self._replies.reject(work, topic, payload, "unknown_topic", f"unknown message kind {kind!r}")
        return False

    def _status(self, work: Work, topic: str, store_id: str, reader_id: str, payload: bytes) -> None:
        try:
            status = decode_as(ReaderStatus, payload)
            check_status(status, self._not_after_us())
        except (WireError, FormatError) as exc:
            self._replies.reject(work, topic, payload, exc.reason, exc.detail)
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
            check_heartbeat(beat, self._not_after_us())
        except (WireError, FormatError) as exc:
            self._replies.reject(work, topic, payload, exc.reason, exc.detail)
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
            check_pos(tx, self._not_after_us())
        except (WireError, FormatError) as exc:
            self._replies.reject(work, topic, payload, exc.reason, exc.detail)
            return
        if tx.store_id != store_id:
            self._replies.reject(work, topic, payload, "topic_mismatch", f"transaction is for store {tx.store_id}")
            return
        transitions = self.trackers[store_id].pos_transaction(tx)
        if transitions:
            work.segment(store_id, batches=False).transitions.extend(transitions)

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
                not_after_us=self._not_after_us(),
            )
        except FormatError as exc:
            self._replies.reject(work, topic, payload, exc.reason, exc.detail)
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
        segment = work.segment(store_id, batches=False)
        segment.transitions.extend(transitions)
        segment.observations += len(parsed.sightings)

    # ------------------------------------------------------------------ #
    # Step 2: commit (one transaction per run of batches), then replies

    async def commit(self, work: Work) -> list[Outgoing]:
        """Write ``work`` (``gateway.commit``); returns the replies to publish.  Raises only to stop the process."""
        return await self._committer.commit(work)

    async def resync(self) -> None:
        """Rebuild from the ledger the state machines whose effects the ledger refused (call between prepares).

        A refused write means the state machine applied transitions the ledger
        does not have; reloading the store's items makes memory equal the
        ledger again.  Transitions prepared meanwhile from the old state are
        committed as prepared.
        """
        diverged = self._committer.diverged
        for store_id in sorted(diverged):
            if store_id in self.trackers:
                log.warning("rebuilding store %s from the ledger after a refused write", store_id)
                await self.add_store(store_id)
        diverged.clear()

    async def handle(self, topic: str, payload: bytes) -> list[Outgoing]:
        """Prepare and commit one message (tests, tools)."""
        return await self.commit(await self.prepare([(topic, payload)]))

    def _not_after_us(self) -> int:
        """The latest event time accepted now: the gateway's clock plus the allowed skew (``gateway.vetting``)."""
        return self.clock.now_us() + self._skew_us
