"""The ingestor takes its state machines from an injected factory (tools and tests bring their own policy)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gateway.policy import DEFAULT_POLICY
from gateway.state import StoreTracker
from tagledger.clock import Clock
from tagledger.site import Store
from tests.gateway.ingest_kit import READER, STORE, TOPICS, acks, batch, dumps, ingestor


async def test_stores_get_their_tracker_from_the_factory(tmp_path: Path) -> None:
    policy = dataclasses.replace(DEFAULT_POLICY)
    made: list[str] = []

    def factory(store: Store, clock: Clock) -> StoreTracker:
        made.append(store.id)
        return StoreTracker(store, clock, policy)

    async with ingestor(f"sqlite:///{tmp_path}/ledger.db", tracker_factory=factory) as (ing, _ledger, _clock):
        assert made == [STORE]
        assert ing.trackers[STORE].policy is policy
        replies = await ing.commit(await ing.prepare([(TOPICS.reads(STORE, READER), dumps(batch(0)))]))
        assert acks(replies) == [(0, "committed")]
        assert len(ing.trackers[STORE]) == 3
