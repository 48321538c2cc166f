"""Tag anomalies through the ingestor: found in POS lines, written on a tick, restored after a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import anomaly_store
from gateway.anomaly_store import load_anomalies
from tagledger.wire import PosLine, PosTransaction, encode
from tests.gateway.ingest_kit import NOW_US, READER, STORE, TOPICS, acks, batch, dumps, ingestor

UNTAGGED = "09506000134352"


def _sale(tx_id: str, at_us: int) -> tuple[str, bytes]:
    tx = PosTransaction(store_id=STORE, transaction_id=tx_id, at_us=at_us, lines=[PosLine(gtin=UNTAGGED, quantity=2)])
    return TOPICS.pos(STORE), encode(tx)


async def _untagged_sales_survive_a_restart(url: str) -> None:
    async with ingestor(url) as (ing, _, clock):
        work = await ing.prepare([(TOPICS.reads(STORE, READER), dumps(batch(0)))])
        assert len(acks(await ing.commit(work))) == 1
        await ing.commit(await ing.prepare([_sale("t1", NOW_US)]))
        assert ing.tick().anomalies == []  # written every 10 s, not at once
        clock.advance(anomaly_store.SAVE_EVERY_US / 1e6)
        work = ing.tick()
        assert len(work.anomalies) == 1
        await ing.commit(work)
        clock.advance(anomaly_store.SAVE_EVERY_US / 1e6)
        assert ing.tick().anomalies == []  # nothing new since
    async with ingestor(url) as (restarted, ledger, clock):
        (a,) = await load_anomalies(ledger, STORE)
        assert (a.kind, a.gtin, a.units, a.evidence) == ("untagged_sales", UNTAGGED, 2, {"transactions": ["t1"]})
        assert restarted.trackers[STORE].anomalies.anomalies() == [a]
        await restarted.commit(await restarted.prepare([_sale("t2", NOW_US + 5_000_000)]))
        clock.advance(anomaly_store.SAVE_EVERY_US / 1e6)
        await restarted.commit(restarted.tick())
        (a,) = await load_anomalies(ledger, STORE)
        assert (a.units, a.evidence) == (4, {"transactions": ["t1", "t2"]})


async def test_untagged_sales_are_written_and_survive_a_restart_on_sqlite(tmp_path: Path) -> None:
    await _untagged_sales_survive_a_restart(f"sqlite:///{tmp_path / 'ledger.db'}")


@pytest.mark.integration
async def test_untagged_sales_are_written_and_survive_a_restart_on_postgresql(pg_url: str) -> None:
    await _untagged_sales_survive_a_restart(pg_url)
