"""Sharing the stores among gateways (PostgreSQL): take a fair share, hand surplus back, notice lost ones.

With ``leases`` on, the gateway subscribes only to the stores whose lease it
holds (``gateway.leases``), and writes each through the connection that holds
its lease.  Every ``lease_poll_s`` :class:`LeaseKeeper` counts the live
gateways and holds at most ``ceil(stores / live)``: it hands surplus stores back
(unsubscribe, drain, commit, unlock) and tries free ones up to its share, so a
gateway that joins gets its share, and when one dies the others take its stores
within a poll interval; the new holder asks an agent for the batches it missed
as soon as a later batch of that reader arrives (ack ``resend``), and an agent
with nothing newer to send re-sends at its ack timeout.  SQLite has one writer:
one gateway owns every store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiomqtt

from gateway.grouping import CommitGroups
from gateway.ingest import Ingestor
from gateway.leases import StoreLeases
from gateway.metrics import GatewayMetrics
from gateway.session import MqttSession

log = logging.getLogger(__name__)

#: Longest a surplus store's pending writes are waited for before it is handed back.
DRAIN_LIMIT_S = 10.0


class LeaseKeeper:
    def __init__(
        self,
        leases: StoreLeases,
        ingestor: Ingestor,
        groups: CommitGroups,
        candidates: Callable[[], list[str]],
        metrics: GatewayMetrics,
        poll_s: float,
    ) -> None:
        self.leases = leases
        self.ingestor = ingestor
        self.groups = groups
        self._candidates = candidates
        self.metrics = metrics
        self._poll_s = poll_s
        self.session: MqttSession | None = None  # set once the session exists (the first poll runs before)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            if await self.poll() and self.session is not None:
                with contextlib.suppress(aiomqtt.MqttError):
                    await self.session.sync_subscriptions()

    async def poll(self) -> bool:
        """Give up lost stores, hand surplus back, take free ones up to our share; True if the set changed."""
        leases, ingestor = self.leases, self.ingestor
        changed = False
        for store_id in sorted(leases.held()):
            if not await leases.alive(store_id):
                async with self.groups.lock:
                    ingestor.drop_store(store_id)
                await leases.release(store_id)
                log.warning("gave up store %s: its lease is gone", store_id)
                changed = True
        candidates = self._candidates()
        live = await leases.live_gateways()
        # Our share: ceil(stores / live gateways).  Unknown count (database
        # unreachable): keep what we hold, take nothing new.
        quota = -(-len(candidates) // live) if live else len(leases.held())
        for store_id in sorted(leases.held())[quota:]:
            await self._hand_back(store_id)
            changed = True
        for store_id in candidates:
            if len(leases.held()) >= quota:
                break
            if store_id in leases.held():
                continue
            if await leases.try_acquire(store_id):
                async with self.groups.lock:
                    await ingestor.add_store(store_id)
                log.info("took store %s", store_id)
                changed = True
        self.metrics.stores_held.set(len(ingestor.trackers))
        return changed

    async def _hand_back(self, store_id: str) -> None:
        """Give a surplus store to another gateway without making its agents wait long.

        Unsubscribe first (no new messages for it), then drain: the messages the
        broker delivered before its UNSUBACK are prepared and committed here, so
        their acks go out from this gateway.  Only then is the store dropped
        and its lease (the session's lock) released; the next holder loads the
        items this gateway committed.  If draining takes too long (a stuck
        commit), the store is dropped anyway: what is not committed stays
        unacknowledged and the agents re-send it to the new holder.
        """
        session, groups = self.session, self.groups
        if session is not None and session.client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await session.unsubscribe(store_id)
            # Everything queued before the UNSUBACK must go through prepare first;
            # the receiver and the committer notify groups.progress as they go.
            target = session.pumped + session.taking + session.queued()

            def drained() -> bool:
                return session.pumped >= target and not groups.pending(store_id)

            try:
                async with asyncio.timeout(DRAIN_LIMIT_S), groups.progress:
                    await groups.progress.wait_for(drained)
            except TimeoutError:
                log.warning("store %s handed back before its writes drained; its agents will re-send", store_id)
        async with groups.lock:
            self.ingestor.drop_store(store_id)
        await self.leases.release(store_id)
        log.info("handed store %s back for another gateway to take", store_id)
