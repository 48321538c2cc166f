"""Migrations: from empty, idempotent, concurrent, reversible, and equal to schema.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tagledger.ledger import open_ledger, timescale
from tagledger.ledger.migrate import current_revision, downgrade, head_revision, migrate
from tagledger.ledger.repository import LedgerCorrupt
from tagledger.ledger.schema import metadata
from tagledger.ledger.urls import parse

TABLES = (
    {"batches", "events", "items", "stock", "rejects", "reader_status", "alembic_version"}
    | {
        "holds",
        "hold_cursors",
        "api_keys",
        "webhook_subscriptions",
        "webhook_deliveries",
        "webhook_marks",
        "webhook_lease",
        "webhook_pending",
        "antenna_health",
        "read_rates",
        "anomalies",
    }
    | {
        "count_sessions",
        "count_expected",
        "count_reads",
        "count_results",
        "count_missing",
        "book_imports",
        "book_lines",
        "adjustments",
        "audit_log",
    }
)


async def _inspect(url: str, fn: Any) -> Any:
    engine = create_async_engine(parse(url).sqlalchemy_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _drift(conn: Connection) -> list[Any]:
    diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    # The time-partitioning revision adds PostgreSQL-only objects schema.py does not model.
    return [d for d in diffs if not (d[0] == "remove_index" and d[1].name == "events_at_brin")]


async def test_migrate_from_empty_twice_reaches_head_and_matches_schema(ledger_url: str) -> None:
    await migrate(ledger_url)
    await migrate(ledger_url)  # at head already: nothing to do, no error
    assert await _inspect(ledger_url, current_revision) == head_revision()
    assert await _inspect(ledger_url, _tables) == TABLES
    assert await _inspect(ledger_url, _drift) == []


async def test_downgrade_to_base_and_up_again(ledger_url: str) -> None:
    await migrate(ledger_url)
    await downgrade(ledger_url, "base")
    assert await _inspect(ledger_url, _tables) == {"alembic_version"}
    await migrate(ledger_url)
    assert await _inspect(ledger_url, current_revision) == head_revision()


async def test_opening_an_unmigrated_ledger_says_to_migrate(ledger_url: str) -> None:
    with pytest.raises(LedgerCorrupt, match="tagledger migrate"):
        await open_ledger(ledger_url)
    await migrate(ledger_url, "0001")
    with pytest.raises(LedgerCorrupt, match="schema revision 0001"):
        await open_ledger(ledger_url)


@pytest.mark.integration
async def test_concurrent_migrations_serialise(pg_url: str) -> None:
    # Gateway replicas starting together all ask to migrate.
    await asyncio.gather(*(migrate(pg_url) for _ in range(3)))
    assert await _inspect(pg_url, current_revision) == head_revision()


@pytest.mark.integration
async def test_plain_postgresql_gets_a_brin_index_on_event_time(pg_url: str) -> None:
    def partitioning(conn: Connection) -> tuple[bool, bool, list[str]]:
        indexes = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE tablename = 'events' AND indexname = 'events_at_brin'")
        ).scalars()
        return timescale.available(conn), timescale.in_use(conn), list(indexes)

    await migrate(pg_url)
    available, in_use, brin = await _inspect(pg_url, partitioning)
    if available:  # pragma: no cover - a TimescaleDB server: the other branch of revision 0002
        assert in_use
        assert brin == []
    else:
        assert not in_use
        assert len(brin) == 1
        assert "USING brin (at)" in brin[0]


def test_timescale_ddl_is_short_and_targets_events() -> None:
    ddl = timescale.statements(timescaledb=True)
    # The only reachable TimescaleDB build (WebAssembly) accepts statements under 64 KiB.
    assert all(len(sql.encode()) < 64 * 1024 for sql in ddl)
    joined = "\n".join(ddl)
    assert "create_hypertable('events', 'at'" in joined
    assert "add_compression_policy" in joined
    assert "add_retention_policy" in joined
    assert "timescaledb.continuous" in joined
    assert "WITH NO DATA" in joined  # creatable inside the migration's transaction
    assert timescale.statements(timescaledb=False) != ddl
