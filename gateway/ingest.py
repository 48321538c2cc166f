"""From one MQTT message to ledger writes and the replies it calls for.

:class:`Ingestor` is the gateway minus the network: ``handle(topic, payload)``
validates, de-duplicates, runs the store's state machine, commits, and returns
the messages to publish (acks, dead letters).  ``gateway.service`` moves bytes
between it and the broker.

Exactly-once effect
    A batch's ledger rows and its ``(reader, boot, seq)`` key commit in one
    transaction (``Ledger.commit_batch``).  The ack that lets the agent drop the
    batch from its spool is returned only after that commit.  A gateway killed at
    any instant therefore either committed the batch (the agent re-sends, the
    key is found, the reply is ``duplicate``) or did not (the agent re-sends and
    it is committed now).  Nothing is lost, nothing is doubled.

Ordering
    Messages are handled one at a time under ``_write_lock`` together with the
    silence timers (``tick``), so a store's state machine and the ledger never
    see interleaved writes.  The state machine is mutated before the commit; if
    the commit fails transiently it is retried with the *same* transitions, and
    if the process dies the state machine is rebuilt from the ledger at start.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from gateway.formats import FormatError, sightings_from_batch
from gateway.metrics import GatewayMetrics
from gateway.state import StoreTracker
from tagledger.clock import US_PER_S, Clock
from tagledger.ledger.model import (
    MAX_REJECT_BYTES,
    BatchKey,
    BatchRecord,
    ReaderStatusRecord,
    Reject,
    Transition,
)
from tagledger.ledger.repository import CommitResult, Ledger, LedgerUnavailable
from tagledger.mqtt import backoff_delays
from tagledger.site import Site
from tagledger.wire import (
    Ack,
    PosTransaction,
    ReadBatch,
    ReaderState,
    ReaderStatus,
    Topics,
    WireError,
    decode_as,
    encode,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    qos: int = 1


class Ingestor:
    def __init__(
        self,
        site: Site,
        ledger: Ledger,
        topics: Topics,
        clock: Clock,
        metrics: GatewayMetrics | None = None,
        stores: Sequence[str] | None = None,
    ) -> None:
        self.site = site
        self.ledger = ledger
        self.topics = topics
        self.clock = clock
        self.metrics = metrics or GatewayMetrics()
        wanted = set(stores) if stores else {s.id for s in site.stores}
        unknown = wanted - {s.id for s in site.stores}
        if unknown:
            raise ValueError(f"stores not in the site file: {', '.join(sorted(unknown))}")
        self.trackers = {s.id: StoreTracker(s, clock) for s in site.stores if s.id in wanted}
        self._write_lock = asyncio.Lock()
        self._readers_down: set[str] = set()

    async def load(self) -> None:
        """Rebuild every store's state machine from the ledger."""
        for store_id, tracker in self.trackers.items():
            tracker.load(await self.ledger.load_items(store_id))
        self.metrics.items.set(sum(len(t) for t in self.trackers.values()))

    # ------------------------------------------------------------------ #

    async def handle(self, topic: str, payload: bytes) -> list[Outgoing]:
        parsed = self.topics.parse(topic)
        if parsed is None:
            return await self._reject(topic, payload, "unknown_topic", "not a tagledger v1 topic")
        store_id, reader_id, kind = parsed
        if store_id not in self.trackers:
            if self.site.stores and store_id not in {s.id for s in self.site.stores}:
                return await self._reject(topic, payload, "unknown_store", f"store {store_id!r} is not in the site")
            return []  # another gateway's store
        async with self._write_lock:
            if kind == "reads":
                return await self._reads(topic, store_id, reader_id, payload)
            if kind == "status":
                return await self._status(topic, store_id, reader_id, payload)
            if kind == "transactions" and reader_id == "_pos":
                return await self._pos(topic, store_id, payload)
            if kind in ("heartbeat", "ack"):
                return []
            return await self._reject(topic, payload, "unknown_topic", f"unknown message kind {kind!r}")

    async def tick(self) -> None:
        """Run silence timers and write what they decide."""
        async with self._write_lock:
            for tracker in self.trackers.values():
                transitions = tracker.tick()
                if transitions:
                    await self._commit_transitions(transitions)

    # ------------------------------------------------------------------ #

    async def _reads(self, topic: str, store_id: str, reader_id: str, payload: bytes) -> list[Outgoing]:
        try:
            batch = decode_as(ReadBatch, payload)
        except WireError as exc:
            return await self._reject(topic, payload, exc.reason, exc.detail)
        if (batch.store_id, batch.reader_id) != (store_id, reader_id):
            detail = f"payload is for {batch.store_id}/{batch.reader_id}, topic for {store_id}/{reader_id}"
            return await self._reject(topic, payload, "topic_mismatch", detail, ack=batch)
        key = BatchKey(batch.reader_id, batch.boot_id, batch.seq)
        if await self._retrying(lambda: self.ledger.has_batch(key)):
            self.metrics.batches.labels("duplicate").inc()
            return [self._ack(batch, "duplicate")]
        try:
            sightings = sightings_from_batch(batch, self.site)
        except FormatError as exc:
            return await self._reject(topic, payload, exc.reason, exc.detail, ack=batch)
        tracker = self.trackers[store_id]
        transitions = tracker.observe(sightings, key)
        now = self.clock.now_us()
        record = BatchRecord(
            key=key,
            store_id=store_id,
            observations=len(batch.observations),
            sent_at_us=batch.sent_at_us,
            received_at_us=now,
            gaps=sum(g.dropped_reads for g in batch.gaps),
        )
        result = await self._retrying(lambda: self.ledger.commit_batch(record, transitions))
        self.metrics.batches.labels(result.value).inc()
        if result is CommitResult.COMMITTED:
            self.metrics.observations.inc(len(batch.observations))
            self._count(transitions)
            for gap in batch.gaps:
                self.metrics.gaps.labels(gap.reason).inc(gap.dropped_reads)
            if batch.observations:
                newest = max(o.last_seen_us for o in batch.observations) - batch.clock_offset_us
                self.metrics.commit_lag.observe(max(0.0, (self.clock.now_us() - newest) / US_PER_S))
        self.metrics.items.set(sum(len(t) for t in self.trackers.values()))
        return [self._ack(batch, result.value)]

    async def _status(self, topic: str, store_id: str, reader_id: str, payload: bytes) -> list[Outgoing]:
        try:
            status = decode_as(ReaderStatus, payload)
        except WireError as exc:
            return await self._reject(topic, payload, exc.reason, exc.detail)
        tracker = self.trackers[store_id]
        if status.state is ReaderState.ONLINE:
            self._readers_down.discard(reader_id)
            tracker.reader_up(reader_id, status.at_us)
        else:
            self._readers_down.add(reader_id)
            tracker.reader_down(reader_id, status.at_us)
        self.metrics.readers_down.set(len(self._readers_down))
        record = ReaderStatusRecord(
            reader_id=reader_id, store_id=store_id, state=status.state.value, at_us=status.at_us, detail=status.detail
        )
        await self._retrying(lambda: self.ledger.record_reader_status(record))
        return []

    async def _pos(self, topic: str, store_id: str, payload: bytes) -> list[Outgoing]:
        try:
            tx = decode_as(PosTransaction, payload)
        except WireError as exc:
            return await self._reject(topic, payload, exc.reason, exc.detail)
        if tx.store_id != store_id:
            return await self._reject(topic, payload, "topic_mismatch", f"transaction is for store {tx.store_id}")
        transitions = self.trackers[store_id].pos_transaction(tx)
        if transitions:
            await self._commit_transitions(transitions)
        return []

    async def _commit_transitions(self, transitions: Sequence[Transition]) -> None:
        await self._retrying(lambda: self.ledger.commit_transitions(transitions))
        self._count(transitions)

    # ------------------------------------------------------------------ #

    def _ack(self, batch: ReadBatch, result: Literal["committed", "duplicate", "rejected"]) -> Outgoing:
        ack = Ack(reader_id=batch.reader_id, boot_id=batch.boot_id, seq=batch.seq, result=result)
        return Outgoing(self.topics.ack(batch.store_id, batch.reader_id), encode(ack))

    def _count(self, transitions: Sequence[Transition]) -> None:
        for t in transitions:
            self.metrics.transitions.labels(t.to_state.value).inc()

    async def _reject(
        self, topic: str, payload: bytes, reason: str, detail: str, *, ack: ReadBatch | None = None
    ) -> list[Outgoing]:
        """Dead-letter a payload: keep it (bounded) with its reason, tell the broker, carry on.

        When the payload was a parseable batch, the agent is told ``rejected`` so it
        stops re-sending something that can never be ingested; the batch is kept in
        the rejects table, so nothing is lost.
        """
        now = self.clock.now_us()
        kept = payload[:MAX_REJECT_BYTES]
        log.warning("rejected payload on %s: %s: %s", topic, reason, detail)
        self.metrics.rejects.labels(reason).inc()
        await self._retrying(
            lambda: self.ledger.record_reject(
                Reject(reason=reason, detail=detail, topic=topic, payload=kept, received_at_us=now)
            )
        )
        letter = {
            "reason": reason,
            "detail": detail,
            "topic": topic,
            "received_at_us": now,
            "payload_b64": base64.b64encode(kept).decode(),
            "payload_truncated": len(payload) > len(kept),
        }
        out = [Outgoing(self.topics.dead_letter(reason), json.dumps(letter).encode())]
        if ack is not None:
            out.append(self._ack(ack, "rejected"))
        return out

    async def _retrying(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run a ledger call, retrying while the database is unavailable.

        Ingestion blocks meanwhile: the message stays unacknowledged, so the agent
        keeps it in its spool, and nothing later overtakes it.
        """
        delays = backoff_delays(initial=0.2, maximum=10.0)
        while True:
            try:
                return await op()
            except LedgerUnavailable as exc:
                delay = next(delays)
                log.warning("ledger unavailable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
