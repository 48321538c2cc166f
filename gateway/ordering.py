"""Read batches, in order and once: decode, de-duplicate, hold for missing predecessors, vet, observe.

:class:`BatchIntake` prepares one ``reads`` message into a
:class:`~gateway.work.Work` (``gateway.ingest`` routes the messages to it):

De-duplication (``gateway.dedup``)
    A batch's ``(reader, boot, seq)`` key is classified before the state
    machine sees it: ``new``, ``duplicate`` (committed: answered ``duplicate``
    at once), ``pending`` (being committed: the pending commit's ack answers
    this copy too) or ``check`` (asked of the ledger).  A stream seen for the
    first time starts from the ledger's highest committed seq (``max_seq``).
Ordering (``gateway.reorder``)
    Each reader's batches are prepared in ``seq`` order: one that arrives ahead
    of a missing predecessor is held, unacknowledged, until the predecessor
    comes or ``reorder_wait_s`` is over, and the missing seqs are asked for at
    once (ack ``resend``), so the ledger's evidence does not depend on the
    order the broker delivered them in.  A seq far beyond its stream
    (``MAX_SEQ_JUMP``) restarts the stream there.
Vetting (``gateway.vetting``, ``fastwire.antenna_zones``)
    After de-duplication (a copy costs no vetting); a batch held or restarting
    its stream is vetted first, so that nobody waits for a batch that will be
    refused.  A refused batch is dead-lettered and its agent told ``rejected``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from gateway.commit import Committer, Replies
from gateway.dedup import BatchIndex
from gateway.fastwire import Batch, antenna_zones, decode_batch
from gateway.metrics import GatewayMetrics
from gateway.records import FormatError
from gateway.reorder import Reorder
from gateway.state import StoreTracker
from gateway.vetting import check_batch
from gateway.work import PreparedBatch, Receipt, StoreLost, Work
from tagledger.clock import US_PER_S, Clock
from tagledger.ledger.model import BatchKey, BatchRecord
from tagledger.ledger.repository import LedgerWriter
from tagledger.site import Site
from tagledger.wire import Topics, WireError

log = logging.getLogger(__name__)

#: A read batch whose seq is this far past what its stream expects restarts the
#: stream there instead of being held for (and asking for) the seqs in between:
#: an agent sends a few hundred batches a minute, so a jump of a million is a
#: reset or corrupted counter, never a backlog.
MAX_SEQ_JUMP = 1_000_000


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


class BatchIntake:
    def __init__(
        self,
        site: Site,
        topics: Topics,
        clock: Clock,
        metrics: GatewayMetrics,
        trackers: Mapping[str, StoreTracker],
        index: BatchIndex,
        replies: Replies,
        *,
        ledger_for: Callable[[str], LedgerWriter],
        committer: Committer,
        not_after_us: Callable[[], int],
        reorder_wait_s: float,
        reorder_max_held: int,
        monotonic: Clock,
    ) -> None:
        self.site = site
        self.topics = topics
        self.clock = clock
        self.metrics = metrics
        self._trackers = trackers
        self._index = index
        self._replies = replies
        self._ledger_for = ledger_for
        self._retrying = committer.retrying
        self._not_after_us = not_after_us  # the latest event time accepted now (clock + allowed skew)
        self._monotonic = monotonic
        # Batches ahead of a hole in their stream wait here for their
        # predecessors; off (None) with no wait, e.g. for tools that feed
        # batches without a runtime to release them.
        self._order: Reorder[_Arrival] | None = None
        if reorder_wait_s > 0:
            self._order = Reorder(reorder_wait_s, reorder_max_held, monotonic, self._held_metric)
        self.stray: list[Receipt] = []  # receipts of held messages dropped unprocessed, to acknowledge

    # ------------------------------------------------------------------ #

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

    def forget_readers(self, readers: Iterable[str]) -> None:
        """Their store changed hands: forget their streams; what they held is not processed here.

        The store's next holder gets the agents' re-sends, in order.  The held
        messages are acknowledged to the broker like any other message of a
        store not held (their receipts join the next work).
        """
        readers = set(readers)
        self._index.forget_readers(readers)
        if self._order is not None:
            self.stray += [a.receipt for a in self._order.forget_readers(readers) if a.receipt is not None]
            self.metrics.held_now.set(self._order.held)

    # ------------------------------------------------------------------ #

    async def reads(
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
        replies = self._replies
        try:
            batch = decode_batch(payload)
        except WireError as exc:
            replies.reject(work, topic, payload, exc.reason, exc.detail)
            return False
        key = BatchKey(batch.reader_id, batch.boot_id, batch.seq)
        if (batch.store_id, key.reader_id) != (store_id, reader_id):
            detail = f"payload is for {batch.store_id}/{key.reader_id}, topic for {store_id}/{reader_id}"
            replies.reject(work, topic, payload, "topic_mismatch", detail, ack=(batch.store_id, key))
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
                work.replies.append(replies.ack(store_id, key, "duplicate"))
            # "pending": the same key is being committed; its ack answers this copy too.
            return False
        # Vetted after de-duplication: a copy of a batch already taken costs no vetting.
        try:
            newest, dropped = check_batch(batch, self._not_after_us())
            zones = antenna_zones(batch, self.site)
        except FormatError as exc:
            replies.reject(work, topic, payload, exc.reason, exc.detail, ack=(store_id, key))
            return False
        observations = batch.observations
        transitions = self._trackers[store_id].observe_reads(
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
        work.batches(store_id).append(
            PreparedBatch(
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
            check_batch(batch, self._not_after_us())
            antenna_zones(batch, self.site)
        except FormatError as exc:
            self._replies.reject(work, topic, payload, exc.reason, exc.detail, ack=(store_id, key))
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
        if self._refused(work, topic, payload, batch, store_id, key):
            # Refused whatever comes before it: nobody waits for it, and it does not wait either.
            await self._take_all(work, order.offer(stream, key.seq, None))
            if receipt is not None:
                work.receipts.append(receipt)
            return True
        arrival = _Arrival(topic, store_id, reader_id, payload, key, receipt, self.clock.now_us())
        released = order.offer(stream, key.seq, arrival)
        await self._take_all(work, released)
        if all(a is not arrival for a in released):  # held: ask for what it waits for
            for seq in order.missing(stream):
                missing = BatchKey(reader_id=key.reader_id, boot_id=key.boot_id, seq=seq)
                work.replies.append(self._replies.ack(store_id, missing, "resend"))
                self.metrics.resend_requests.inc()
        return True

    async def _take_all(self, work: Work, arrivals: list[_Arrival]) -> None:
        """Prepare batches the reorder buffer let go, in its order; their receipts join ``work``."""
        for a in arrivals:
            if a.store_id in self._trackers:
                try:
                    # Held as the bytes that arrived (in memory anyway): decoded again, off the fast path.
                    await self.reads(work, a.topic, a.store_id, a.reader_id, a.payload, None, released=a)
                except StoreLost:
                    pass  # dropped unprocessed; the agent re-sends it to the store's new gateway
                except Exception as exc:
                    self._replies.unprocessable(work, a.topic, a.payload, exc)
            # Only once prepared (or dropped for good): if reads raises, the batches not yet
            # prepared are not PUBACKed with this group, so the broker delivers them again.
            if a.receipt is not None:
                work.receipts.append(a.receipt)
        if self._order is not None:
            self.metrics.held_now.set(self._order.held)

    def _held_metric(self, outcome: str, n: int) -> None:
        if outcome == "skipped":
            self.metrics.skipped_seqs.inc(n)
        else:
            self.metrics.held_batches.labels(outcome).inc(n)


def _jumped(order: Reorder[_Arrival], stream: tuple[str, str], seq: int) -> bool:
    """Is ``seq`` further ahead of what its (known) stream expects than any backlog could be?"""
    return order.known(stream) and seq > order.next_seq(stream) + MAX_SEQ_JUMP
