"""Commit grouping: one open group of prepared messages, committed whenever the previous commit is done.

The receiver (``gateway.session``) prepares each message in arrival order into
the open group (:meth:`CommitGroups.add`); the silence timers (:meth:`ticks`)
and the batches whose hold for a missing predecessor is over
(:meth:`release_held`) join it too.  :meth:`commit_loop` takes the whole open
group as soon as the previous commit ended and commits it (one ledger
transaction per store for all its batches), then publishes the acks and dead
letters and acknowledges the messages to the broker.

The group grows while the previous commit runs, so its size follows the load
on its own: one message at a time when idle (lowest latency), up to
``group_max_messages`` under load, when one transaction and one WAL flush serve
hundreds of batches.  Preparing group N+1 overlaps committing group N.  A full
group stops the receiver, so the backlog waits in the MQTT client's queue and
in the broker, not in prepared state.

Shutdown drains: :meth:`close` stops new work from joining (the receiver stops
at the next group, timers and releases stop), and :meth:`idle` returns once the
commit under way and the open group are committed, their replies published and
their messages acknowledged.  What was received but not prepared is not
acknowledged: the broker delivers it again to the next session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from gateway.ingest import Ingestor
from gateway.metrics import GatewayMetrics
from gateway.work import Outgoing, Receipt, Work

log = logging.getLogger(__name__)

#: Publishes a committed group's replies, then acknowledges its messages to the broker.
Deliver = Callable[[list[Outgoing], list[Receipt]], Awaitable[None]]


class CommitGroups:
    def __init__(self, ingestor: Ingestor, metrics: GatewayMetrics, group_max_messages: int, deliver: Deliver) -> None:
        self.ingestor = ingestor
        self.metrics = metrics
        self._cap = group_max_messages
        self._deliver = deliver
        self.open = Work()
        self.lock = asyncio.Lock()  # prepare / tick / store hand-over never interleave
        self._has_work = asyncio.Event()
        self._room = asyncio.Event()  # the open group is below its cap
        self._room.set()
        self._holding = asyncio.Event()  # the ingestor holds batches for missing predecessors
        self._idle = asyncio.Event()  # nothing open, nothing being committed
        self._idle.set()
        self._closing = False
        self.committing: set[str] = set()  # stores of the commit under way
        # Readiness tells the truth: a step (prepare, commit) that began this long
        # ago and has not ended means messages wait and nothing is committed.
        self.preparing_since: float | None = None
        self.committing_since: float | None = None
        #: Notified whenever a group was prepared or committed (see :meth:`progressed`).
        self.progress = asyncio.Condition()

    # ------------------------------------------------------------------ #
    # Prepare side

    async def add(self, messages: Sequence[tuple[str, bytes]], receipts: Sequence[Receipt]) -> None:
        """Prepare messages into the open group (waits while it is full)."""
        self.preparing_since = time.monotonic()
        try:
            await self._room.wait()
            async with self.lock:
                try:
                    await self.ingestor.prepare(messages, self.open, receipts)
                finally:
                    # Even when prepare failed part-way: a hold it stored must still time out.
                    if self.ingestor.holding:
                        self._holding.set()
                self._opened()
        finally:
            self.preparing_since = None

    async def ticks(self, interval_s: float) -> None:
        """The state machines' silence timers, into the open group."""
        while True:
            await asyncio.sleep(interval_s)
            if self._closing:
                continue
            async with self.lock:
                self.ingestor.tick(self.open)
                self._opened()

    async def release_held(self) -> None:
        """Prepare the batches whose hold for a missing predecessor is over (``gateway.reorder``).

        Holds that end because their predecessor came, or because too many
        messages are held, are released by the receiver itself, at once; this
        task only gives up on holes that did not fill within ``reorder_wait_s``.
        """
        ingestor = self.ingestor
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
            async with self.lock:
                try:
                    await ingestor.release_due(self.open)
                except Exception:
                    # Like a message handler, this must not kill the gateway.  A
                    # released batch that was not prepared gets no ack: its agent
                    # sends it again.
                    log.exception("unexpected error releasing held batches")
                self._opened()

    def _opened(self) -> None:
        """After adding to the open group (under the lock): wake the committer, close the room when full."""
        if self.open:
            self._idle.clear()
            self._has_work.set()
        if self.open.messages >= self._cap:
            self._room.clear()

    # ------------------------------------------------------------------ #
    # Commit side

    async def commit_loop(self) -> None:
        while True:
            await self._has_work.wait()
            async with self.lock:
                work, self.open = self.open, Work()
                self._has_work.clear()
                if not self._closing:
                    self._room.set()
            self.metrics.group_messages.observe(work.messages)
            started = time.perf_counter()
            self.committing = set(work.stores)
            self.committing_since = time.monotonic()
            try:
                replies = await self.ingestor.commit(work)
                self.metrics.commit_seconds.observe(time.perf_counter() - started)
                self.metrics.last_commit.set_to_current_time()
                await self._deliver(replies, work.receipts)
            finally:
                self.committing = set()
                self.committing_since = None
                if not self.open:
                    self._idle.set()
            await self.progressed()

    def pending(self, store_id: str) -> bool:
        """Has the store writes in the open group or in the commit under way?"""
        return store_id in self.open.stores or store_id in self.committing

    async def progressed(self) -> None:
        """Wake whoever waits on :attr:`progress` for a group prepared or committed."""
        async with self.progress:
            self.progress.notify_all()

    # ------------------------------------------------------------------ #
    # Shutdown

    def close(self) -> None:
        """No new work: the receiver stops before its next group, timers and releases stop."""
        self._closing = True
        self._room.clear()

    async def idle(self) -> None:
        """Wait until the open group and the commit under way are committed and delivered."""
        async with self.lock:  # a prepare under way ends first
            pass
        await self._idle.wait()

    def stalled_s(self) -> float:
        """How long the oldest unfinished step (prepare or commit) has been running; 0 when none is."""
        now = time.monotonic()
        began = [t for t in (self.preparing_since, self.committing_since) if t is not None]
        return now - min(began) if began else 0.0
