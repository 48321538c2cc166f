"""The ``tagledger_readers_stale`` gauge counts only readers of the stores this gateway holds.

With leases, a store moves between gateway replicas.  A replica that hands a store over
no longer processes its heartbeats; if it kept the store's readers' stale times they
would all turn stale three intervals later and its gauge would raise a false alert until
it restarted.
"""

from __future__ import annotations

from pathlib import Path

from tagledger.clock import US_PER_S
from tagledger.ledger.model import ReaderHeartbeatRecord, ReaderStatusRecord
from tests.gateway.ingest_kit import NOW_US, READER, STORE, TOPICS, dumps, ingestor


def heartbeat(at_us: int) -> bytes:
    return dumps(
        {
            "v": 1,
            "kind": "heartbeat",
            "store_id": STORE,
            "reader_id": READER,
            "boot_id": "b",
            "at_us": at_us,
            "reader_connected": True,
            "interval_s": 1.0,
        }
    )


async def test_a_store_handed_over_leaves_no_stale_reader_behind(tmp_path: Path) -> None:
    async with ingestor(f"sqlite:///{tmp_path}/ledger.db") as (ing, _ledger, clock):
        stale = ing.metrics.readers_stale._value
        await ing.prepare([(TOPICS.heartbeat(STORE, READER), heartbeat(NOW_US))])
        ing.tick()
        assert stale.get() == 0
        clock.advance(5)  # three intervals without a heartbeat: stale while held
        ing.tick()
        assert stale.get() == 1
        await ing.prepare([(TOPICS.heartbeat(STORE, READER), heartbeat(NOW_US + 5 * US_PER_S))])
        ing.tick()
        assert stale.get() == 0
        ing.drop_store(STORE)  # another replica holds it now and hears its heartbeats
        clock.advance(60)
        ing.tick()
        assert stale.get() == 0


def online(at_us: int) -> bytes:
    return dumps({"v": 1, "kind": "status", "store_id": STORE, "reader_id": READER, "state": "online", "at_us": at_us})


async def test_a_reader_that_went_quiet_before_a_restart_is_still_counted_stale(tmp_path: Path) -> None:
    """The gauge starts from the ledger's stale times, so a gateway restart (or a replica taking the
    store over) does not forget an agent that froze before it: the API says stale, so must the gauge."""
    url = f"sqlite:///{tmp_path}/ledger.db"
    async with ingestor(url) as (ing, ledger, _clock):
        work = await ing.prepare(
            [(TOPICS.status(STORE, READER), online(NOW_US)), (TOPICS.heartbeat(STORE, READER), heartbeat(NOW_US))]
        )
        await ing.commit(work)
        # A reader since removed from the site file: the API no longer lists it, nor may the gauge.
        gone = ReaderStatusRecord(reader_id="paris-01-gone", store_id=STORE, state="online", at_us=NOW_US)
        await ledger.record_reader_status(gone)
        await ledger.record_reader_heartbeat(
            ReaderHeartbeatRecord("paris-01-gone", STORE, NOW_US, NOW_US + 3 * US_PER_S)
        )
    async with ingestor(url) as (ing, ledger, clock):  # restarted; the agent is frozen: no heartbeat comes
        clock.advance(10)
        ing.tick()
        (status, _gone) = await ledger.reader_statuses(STORE)
        assert status.stale_at_us is not None
        assert clock.now_us() > status.stale_at_us  # the API says stale
        assert ing.metrics.readers_stale._value.get() == 1
