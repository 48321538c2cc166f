"""Step 2 of ingestion: write a prepared :class:`~gateway.work.Work`, retrying the ledger; dead letters.

:class:`Committer` writes a work: each run of read batches is ONE
``LedgerWriter.commit_batches`` call, i.e. one transaction and one durable flush
shared by every batch that arrived together, and returns the acks and dead
letters to publish.  Stores are independent and commit side by side.

Retries
    A transient database fault (``LedgerUnavailable``) is retried with jittered
    backoff until the database is back: ingestion blocks meanwhile, the messages
    stay unacknowledged, the agents keep them in their spools, and nothing later
    overtakes them.  A write for a store this gateway stopped holding gives up
    (``StoreLost``): its new holder gets the agents' re-sends.  A write the
    ledger refuses for good costs that write only: a batch goes to the dead
    letter (``ledger_refused``) and its store is marked *diverged* (the state
    machine applied transitions the ledger does not have; ``gateway.ingest``
    rebuilds it from the ledger before the next prepare); a dead letter, status
    or heartbeat is logged.

:class:`Replies` makes what the gateway publishes: acks, and dead letters --
the payload kept (bounded) with its reason in the rejects table, a copy on the
dead-letter topic, and a ``rejected`` ack when the payload was a parseable
batch, so that its agent stops re-sending what can never be ingested.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from gateway.dedup import BatchIndex
from gateway.metrics import GatewayMetrics
from gateway.work import Outgoing, PreparedBatch, Segment, StoreLost, Work
from tagledger.backoff import backoff_delays
from tagledger.clock import US_PER_S, Clock
from tagledger.ledger.model import MAX_REJECT_BYTES, BatchKey, Reject, Transition
from tagledger.ledger.repository import CommitResult, LedgerUnavailable, LedgerWriter
from tagledger.wire import Ack, AckResult, Topics, encode

log = logging.getLogger(__name__)
T = TypeVar("T")


class Sized(Protocol):
    def __len__(self) -> int: ...


class Replies:
    """Acks and dead letters, as :class:`~gateway.work.Outgoing` messages added to a work."""

    def __init__(self, topics: Topics, clock: Clock, metrics: GatewayMetrics) -> None:
        self.topics = topics
        self.clock = clock
        self.metrics = metrics

    def ack(self, store_id: str, key: BatchKey, result: AckResult) -> Outgoing:
        ack = Ack(reader_id=key.reader_id, boot_id=key.boot_id, seq=key.seq, result=result)
        return Outgoing(self.topics.ack(store_id, key.reader_id), encode(ack))

    def reject(
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
            work.replies.append(self.ack(*ack, "rejected"))

    def unprocessable(self, work: Work, topic: str, payload: bytes, exc: Exception) -> None:
        """A message whose preparation raised past every check: a bug, logged as one, and a dead letter."""
        log.error("could not prepare a message on %s", topic, exc_info=exc)
        detail = f"{type(exc).__name__}: {exc}"[:500]
        self.reject(work, topic, payload, "unprocessable", detail)


class Committer:
    """Writes works to the ledger (see the module's docstring); ``held`` are the stores this gateway holds."""

    def __init__(
        self,
        ledger: LedgerWriter,
        ledger_for: Callable[[str], LedgerWriter],
        held: Mapping[str, Sized],
        index: BatchIndex,
        replies: Replies,
        metrics: GatewayMetrics,
    ) -> None:
        self.ledger = ledger
        self._ledger_for = ledger_for
        self._held = held  # store -> its state machine (sized: the items gauge)
        self._index = index
        self._replies = replies
        self.metrics = metrics
        self.clock = replies.clock
        self.diverged: set[str] = set()  # stores whose memory the ledger refused

    async def commit(self, work: Work) -> list[Outgoing]:
        """Write ``work``; returns the replies to publish.  Raises only when the process must stop.

        A transient database fault is retried here until the database is back
        (the caller acknowledges nothing meanwhile).  A write the ledger refuses
        for good costs that write only: a batch goes to the dead letter
        (``ledger_refused``), a dead letter, status or heartbeat is logged.
        """
        for reject in work.rejects:
            await self.keeping(lambda r=reject: self.ledger.record_reject(r), "a dead letter")  # type: ignore[misc]
        for status in work.statuses:
            with contextlib.suppress(StoreLost):  # the store's new gateway gets the next one
                await self.keeping(
                    lambda s=status: self.ledger.record_reader_status(s),  # type: ignore[misc]
                    "a reader status",
                    status.store_id,
                )
        for beat in work.heartbeats.values():
            with contextlib.suppress(StoreLost):
                await self.keeping(
                    lambda b=beat: self.ledger.record_reader_heartbeat(b),  # type: ignore[misc]
                    "a heartbeat",
                    beat.store_id,
                )
        if work.health:
            steps = work.health
            await self.keeping(lambda: self.ledger.execute_all(steps), "antenna health")
        if work.rates:
            rates = work.rates
            await self.keeping(lambda: self.ledger.execute_all(rates), "read rates")
        if work.anomalies:
            found = work.anomalies
            await self.keeping(lambda: self.ledger.execute_all(found), "tag anomalies")
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
        self.items_gauge()
        return replies

    async def _commit_store(self, store_id: str, segments: list[Segment]) -> list[Outgoing]:
        replies: list[Outgoing] = []
        ledger = self._ledger_for(store_id)
        m = self.metrics
        for i, segment in enumerate(segments):
            try:
                if segment.batches is None:
                    if segment.transitions:
                        ts = segment.transitions
                        if await self.keeping(lambda ts=ts: ledger.commit_transitions(ts), "transitions", store_id):  # type: ignore[misc]
                            self._count(segment.transitions)
                        else:
                            self.diverged.add(store_id)
                    m.observations.inc(segment.observations)
                    continue
                batches = segment.batches
                results: list[CommitResult | None]
                try:
                    results = list(
                        await self.retrying(
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
                    self.diverged.add(store_id)
                    self._index.abandoned(key)
                    m.batches.labels("rejected").inc()
                    dead = Work()
                    self._replies.reject(
                        dead, b.topic, b.payload, "ledger_refused", "the ledger refused it", ack=(store_id, key)
                    )
                    for reject in dead.rejects:
                        await self.keeping(lambda r=reject: self.ledger.record_reject(r), "a dead letter")  # type: ignore[misc]
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

    async def _commit_alone(self, ledger: LedgerWriter, b: PreparedBatch, store_id: str) -> CommitResult | None:
        """One batch in its own transaction; None if the ledger refuses it for good."""
        try:
            [result] = await self.retrying(lambda: ledger.commit_batches([(b.record, b.transitions)]), store_id)
        except StoreLost:
            raise
        except Exception as exc:
            log.error("the ledger refused batch %s: %s", b.record.key, exc)
            return None
        return result

    async def keeping(self, op: Callable[[], Awaitable[object]], what: str, store_id: str | None = None) -> bool:
        """Run a ledger write, retrying transient faults; False (logged) if it is refused for good."""
        try:
            await self.retrying(op, store_id)
        except StoreLost:
            raise
        except Exception as exc:
            log.error("the ledger refused %s for good: %s", what, exc)
            return False
        return True

    async def retrying(self, op: Callable[[], Awaitable[T]], store_id: str | None = None) -> T:
        """Run a ledger call, retrying while the database is unavailable.

        Ingestion blocks meanwhile: the messages stay unacknowledged, so the
        agents keep them in their spools, and nothing later overtakes them.  A
        call for a store this gateway stopped holding gives up (``StoreLost``):
        its new holder will get the agents' re-sends.
        """
        delays = backoff_delays(initial=0.2, maximum=10.0)
        while True:
            if store_id is not None and store_id not in self._held:
                raise StoreLost(store_id)
            try:
                return await op()
            except LedgerUnavailable as exc:
                delay = next(delays)
                log.warning("ledger unavailable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    def items_gauge(self) -> None:
        self.metrics.items.set(sum(len(t) for t in self._held.values()))

    def _abandon(self, segments: list[Segment]) -> None:
        for segment in segments:
            for b in segment.batches or ():
                self._index.abandoned(b.record.key)

    def _count(self, transitions: Sequence[Transition]) -> None:
        counter = self.metrics.transitions
        for t in transitions:
            counter.labels(t.to_state.value).inc()
