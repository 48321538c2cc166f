"""Issue 11, defect 2: a batch is acknowledged only once its effects are committed or it is dead-lettered.

Against a real PostgreSQL: values that fit JSON but not the ledger's columns, the
database refusing connections (``ALLOW_CONNECTIONS false`` on the test's own
database), and a write the ledger refuses anyway.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import asyncpg
import pytest

from gateway import ordering
from gateway.fastwire import Batch
from tagledger.ledger.repository import LedgerUnavailable
from tests.conftest import database_admin_url
from tests.gateway.ingest_kit import READER, STORE, TOPICS, acks, batch, dumps, ingestor, reasons

pytestmark = [pytest.mark.integration, pytest.mark.slow]
READS = TOPICS.reads(STORE, READER)


async def test_values_beyond_the_columns_are_dead_lettered_and_their_group_commits(pg_url: str) -> None:
    async with ingestor(pg_url) as (ing, ledger, _clock):
        gap = {"reason": "queue_overflow", "dropped_reads": 3_000_000_000, "since_us": 1, "until_us": 2}
        messages = [
            (READS, dumps(batch(0))),
            (READS, dumps(batch(1, range(3, 4), gaps=[gap]))),  # int4 column
            (READS, dumps(batch(2**63, range(4, 5)))),  # int8 column
            (READS, dumps(batch(2, range(5, 6), clock_offset_us=-(2**63 - 1)))),  # host time beyond int8
            (READS, dumps(batch(3, range(6, 9)))),
        ]
        work = await ing.prepare(messages)
        assert reasons(work) == ["out_of_range", "out_of_range", "clock"]
        assert sorted(acks(await ing.commit(work))) == [
            (0, "committed"),
            (1, "rejected"),
            (2, "rejected"),
            (3, "committed"),
            (2**63, "rejected"),
        ]
        assert len(await ledger.load_items(STORE)) == 6
        assert len(await ledger.rejects()) == 3


async def test_a_status_whose_text_postgresql_cannot_store_is_dead_lettered(pg_url: str) -> None:
    """Before: the ledger refused it at commit, which killed the gateway's commit task."""
    async with ingestor(pg_url) as (ing, ledger, clock):
        status = {"v": 1, "kind": "status", "store_id": STORE, "reader_id": READER, "state": "online"}
        payload = dumps({**status, "at_us": clock.now_us(), "detail": "a\u0000b"})
        work = await ing.prepare([(TOPICS.status(STORE, READER), payload), (READS, dumps(batch(0)))])
        assert reasons(work) == ["invalid"]
        assert acks(await ing.commit(work)) == [(0, "committed")]
        assert [r.reason for r in await ledger.rejects()] == ["invalid"]


async def _connections(pg_url: str, allow: bool) -> None:
    name = urlsplit(pg_url).path.lstrip("/")
    admin = await asyncpg.connect(database_admin_url())
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
    finally:
        await admin.close()


async def test_a_database_refusing_connections_holds_the_commit_until_it_is_back(pg_url: str) -> None:
    async with ingestor(pg_url) as (ing, ledger, _clock):
        await ing.commit(await ing.prepare([(READS, dumps(batch(0)))]))
        work = await ing.prepare([(READS, dumps(batch(1, range(3, 6))))], receipts=[(1, 7, 1)])
        await _connections(pg_url, allow=False)
        try:
            commit = asyncio.create_task(ing.commit(work))
            await asyncio.sleep(1.5)
            assert not commit.done()  # retrying: nothing acknowledged meanwhile
            with pytest.raises(LedgerUnavailable, match=r"55000|not currently accepting"):
                await ledger.load_items(STORE)
        finally:
            await _connections(pg_url, allow=True)
        assert acks(await asyncio.wait_for(commit, 20)) == [(1, "committed")]
        assert len(await ledger.load_items(STORE)) == 6
        # The agent's re-send of the same batch adds nothing: memory and ledger agree.
        again = await ing.commit(await ing.prepare([(READS, dumps(batch(1, range(3, 6))))]))
        assert acks(again) == [(1, "duplicate")]


@pytest.mark.allow_logged_errors
async def test_a_batch_the_ledger_refuses_anyway_is_dead_lettered_and_the_state_rebuilt(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last line behind vetting: the group is committed batch by batch, the refused one dead-lettered."""

    def no_vetting(b: Batch, _not_after_us: int) -> tuple[int | None, int]:
        return None, sum(g.dropped_reads for g in b.gaps)

    monkeypatch.setattr(ordering, "check_batch", no_vetting)
    async with ingestor(pg_url) as (ing, ledger, _clock):
        gap = {"reason": "queue_overflow", "dropped_reads": 3_000_000_000, "since_us": 1, "until_us": 2}
        work = await ing.prepare(
            [
                (READS, dumps(batch(0))),
                (READS, dumps(batch(1, range(3, 4), gaps=[gap]))),
                (READS, dumps(batch(2, range(5, 7)))),
            ],
            receipts=[(1, 1, 1), (1, 2, 1), (1, 3, 1)],
        )
        replies = await ing.commit(work)
        assert sorted(acks(replies)) == [(0, "committed"), (1, "rejected"), (2, "committed")]
        assert any(r.topic == TOPICS.dead_letter("ledger_refused") for r in replies)
        assert [r.reason for r in await ledger.rejects()] == ["ledger_refused"]
        await ing.prepare([])  # rebuilds the state machine from the ledger
        assert len(ing.trackers[STORE]) == len(await ledger.load_items(STORE)) == 5
