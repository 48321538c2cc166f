# ruff: noqa: S608  -- SQL text is assembled only from this package's constants; values are always bound.
"""Every piece of TimescaleDB DDL the ledger uses, and its plain-PostgreSQL fallback.

Why one module of SQL strings rather than ``sqlalchemy-timescaledb``
    That package (0.4.x) only issues ``create_hypertable`` after ``CREATE
    TABLE``, supports psycopg2 and asyncpg but not psycopg 3, and re-registers
    its event hook on every ``create_all``.  Our schema is created by Alembic
    migrations, not ``create_all``, and we need more than the hypertable
    (compression, retention, a continuous aggregate), all conditional on the
    extension being present.  Keeping the statements here, called from one
    migration (``0002_time_partitioning``), makes the TimescaleDB surface
    reviewable in one screen and testable on its own against a TimescaleDB
    build (the only one reachable from this project's machines is a
    WebAssembly port, good enough to run this DDL but not to ingest).
    Every statement is short (the WebAssembly build limits statements to 64 KiB)
    and none needs to run outside a transaction (the continuous aggregate is
    created ``WITH NO DATA``; its policy fills it).

What is applied when ``timescaledb`` is available
    * ``events`` becomes a hypertable on ``at`` with one-day chunks: a store
      chain writes millions of transitions a day; one-day chunks keep the
      recent, hot chunk's indexes in memory.  The primary key ``(id, at)``
      contains the time column, as a hypertable requires.  TimescaleDB's
      default index on ``at DESC`` is not created (``create_default_indexes =>
      false``): it would be a fifth B-tree updated on every event insert, on
      the ingest hot path, and no query needs it (chunk exclusion already
      narrows time ranges to one-day chunks; per-store and per-EPC queries
      use the first migration's indexes).  The plain-PostgreSQL path makes
      the same trade with a BRIN index instead of a B-tree; and so the
      migrated tables equal ``schema.py`` on both paths.
    * Compression after 7 days, segmented by ``store_id`` (as-of and history
      queries filter on a store or an EPC; segmenting by store keeps one store's
      rows together) and ordered by ``at DESC, id DESC``.  Late batches (an agent
      flushing a spool) arrive within hours, well before compression.
    * ``stock_moves_hourly``: a continuous aggregate counting transitions per hour
      and (store, source store, GTIN, from zone/state, to zone/state).  Stock at
      an hour boundary is the running sum of +moves into a key and -moves out of
      it; a continuous aggregate cannot hold that running sum itself (no window
      functions, no UNION of the two sides of a move), so it holds the flows.
    * Retention: raw event chunks older than :data:`EVENTS_RETENTION` are dropped.
      The ledger never stores raw observations (only their counts per batch), so
      the events are the rawest rows there are; the hourly aggregate outlives
      them because its refresh window (3 days) never reaches back that far.
      NOTE: stock as of a time older than the retention horizon must then be
      answered from the aggregate; the PostgreSQL backend does not do that yet.

Without TimescaleDB (plain PostgreSQL)
    A BRIN index on ``events(at)``.  Events are appended in roughly event-time
    order, so a BRIN index of a few pages summarises the whole table and serves
    time-range scans (exports, clean-ups) at no measurable write cost.  Per-store
    as-of queries use the B-tree ``(store_id, at)`` from the first migration.
    Declarative range partitioning was not chosen: it needs partitions created
    ahead of time by a scheduler of our own, which TimescaleDB exists to replace.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

CHUNK_INTERVAL = "1 day"
COMPRESS_AFTER = "7 days"
EVENTS_RETENTION = "3 years"
AGGREGATE = "stock_moves_hourly"

_TIMESCALE_DDL = (
    "CREATE EXTENSION IF NOT EXISTS timescaledb",
    f"SELECT create_hypertable('events', 'at', chunk_time_interval => INTERVAL '{CHUNK_INTERVAL}',"
    " create_default_indexes => false, migrate_data => true, if_not_exists => true)",
    "ALTER TABLE events SET (timescaledb.compress, timescaledb.compress_segmentby = 'store_id',"
    " timescaledb.compress_orderby = 'at DESC, id DESC')",
    f"SELECT add_compression_policy('events', compress_after => INTERVAL '{COMPRESS_AFTER}', if_not_exists => true)",
    f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {AGGREGATE}
WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 hour', at) AS hour,
       store_id, from_store_id, gtin, from_zone, from_state, to_zone, to_state,
       count(*) AS moves
FROM events
WHERE gtin IS NOT NULL
GROUP BY hour, store_id, from_store_id, gtin, from_zone, from_state, to_zone, to_state
WITH NO DATA""",
    f"SELECT add_continuous_aggregate_policy('{AGGREGATE}', start_offset => INTERVAL '3 days',"
    " end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes', if_not_exists => true)",
    f"SELECT add_retention_policy('events', drop_after => INTERVAL '{EVENTS_RETENTION}', if_not_exists => true)",
)

_TIMESCALE_REVERT = (
    "SELECT remove_retention_policy('events', if_exists => true)",
    f"DROP MATERIALIZED VIEW IF EXISTS {AGGREGATE}",
    "SELECT remove_compression_policy('events', if_exists => true)",
    # A hypertable cannot be turned back into a plain table in place; dropping
    # revision 0001 drops it.
)

_PLAIN_DDL = ("CREATE INDEX IF NOT EXISTS events_at_brin ON events USING brin (at)",)
_PLAIN_REVERT = ("DROP INDEX IF EXISTS events_at_brin",)


def available(conn: Connection) -> bool:
    """Whether the server offers the ``timescaledb`` extension (installed or installable)."""
    return conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")).first() is not None


def in_use(conn: Connection) -> bool:
    """Whether ``events`` is a hypertable in this database."""
    if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first() is None:
        return False
    row = conn.execute(
        text("SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'events'")
    ).first()
    return row is not None


def statements(*, timescaledb: bool) -> tuple[str, ...]:
    """The DDL :func:`apply` (``timescaledb=True``) or :func:`apply_plain` runs, for review and tests."""
    return _TIMESCALE_DDL if timescaledb else _PLAIN_DDL


def apply(conn: Connection) -> None:
    for sql in _TIMESCALE_DDL:
        conn.execute(text(sql))


def apply_plain(conn: Connection) -> None:
    for sql in _PLAIN_DDL:
        conn.execute(text(sql))


def revert(conn: Connection) -> None:
    for sql in _TIMESCALE_REVERT if in_use(conn) else _PLAIN_REVERT:
        conn.execute(text(sql))
