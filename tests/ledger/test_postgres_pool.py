"""The PostgreSQL ledger's pool hands a connection back without a reset round trip."""

from __future__ import annotations

import asyncpg
import pytest

from tagledger.ledger.postgres import PostgresLedger


@pytest.mark.integration
async def test_a_released_connection_ran_no_reset_statement(pg_ledger_url: str) -> None:
    ledger = await PostgresLedger.open(pg_ledger_url, min_size=1, max_size=1)
    watcher = await asyncpg.connect(pg_ledger_url)
    try:
        await ledger.stock_and_reserved(["paris-01"], ["04012345678901"], now_us=1)
        # The pool's only connection is back in the pool: its last statement is the
        # look-up itself, not asyncpg's default "SELECT pg_advisory_unlock_all(); ... RESET ALL".
        last = await watcher.fetch(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert len(last) == 1
        assert "FROM stock" in last[0]["query"]
        assert "RESET ALL" not in last[0]["query"]
    finally:
        await watcher.close()
        await ledger.close()
