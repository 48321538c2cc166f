"""`tagledger bench ingest` says how its long bulk load is going (issue 13: it was silent for minutes)."""

from __future__ import annotations

import asyncpg
import pytest

from tagledger.app.benchmarks.ingest import _bulk_items

pytestmark = pytest.mark.integration


async def test_the_bulk_load_reports_progress_and_loads_every_row(
    pg_ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = await asyncpg.connect(pg_ledger_url)
    try:
        await _bulk_items(conn, 2_500, progress_every=1_000)
        assert await conn.fetchval("SELECT count(*) FROM items") == 2_500
    finally:
        await conn.close()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tagledger bench ingest:")]
    assert [line.split(":", 1)[1].split("(")[0].strip() for line in lines] == [
        "loaded 1,000 of 2,500 items",
        "loaded 2,000 of 2,500 items",
        "loaded 2,500 items; ANALYZE",
    ]
