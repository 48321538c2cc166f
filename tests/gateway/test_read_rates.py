"""The presence model's learned read rates survive a gateway restart, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.read_rates import SAVE_EVERY_US, load_rates
from tests.gateway.ingest_kit import READER, STORE, TOPICS, acks, batch, dumps, ingestor

READS = TOPICS.reads(STORE, READER)


async def _restart_keeps_rates(url: str) -> None:
    async with ingestor(url) as (ing, _, clock):
        work = await ing.prepare([(READS, dumps(batch(seq))) for seq in range(20)])
        assert len(acks(await ing.commit(work))) == 20
        learned = sorted(ing.trackers[STORE].read_rates(), key=lambda r: r.epc)
        assert len(learned) == 3
        assert all(0.9e6 <= r.gap_us <= 1.1e6 and r.gaps >= 8 for r in learned)
        clock.advance(SAVE_EVERY_US / 1e6)
        work = ing.tick()
        assert len(work.rates) == 3
        await ing.commit(work)
        # Nothing changed since: nothing more to save.
        clock.advance(SAVE_EVERY_US / 1e6)
        assert ing.tick().rates == []
    async with ingestor(url) as (restarted, ledger, _):
        assert sorted(await load_rates(ledger, STORE), key=lambda r: r.epc) == learned
        tracker = restarted.trackers[STORE]
        for rate in learned:
            item = tracker.get_item(rate.epc)
            assert item is not None
            assert (item.gap, item.gap_max, item.gaps) == (rate.gap_us, rate.gap_max_us, rate.gaps)


async def test_learned_read_rates_survive_a_restart_on_sqlite(tmp_path: Path) -> None:
    await _restart_keeps_rates(f"sqlite:///{tmp_path / 'ledger.db'}")


@pytest.mark.integration
async def test_learned_read_rates_survive_a_restart_on_postgresql(pg_url: str) -> None:
    await _restart_keeps_rates(pg_url)
