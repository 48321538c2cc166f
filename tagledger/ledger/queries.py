# ruff: noqa: S608  -- SQL text is assembled only from this package's constants; values are always bound.
"""The ledger core's SQL, written once for both backends.

Every statement here is one text in PostgreSQL's ``$N`` placeholder style; the
SQLite backend translates each once, at import, with :func:`sqlite_placeholders`
(``$N`` -> ``?N``: SQLite binds ``?N`` to the N-th argument, so a placeholder may
repeat or come out of order exactly as in PostgreSQL).  Portable SQL only, as
for ``Ledger.fetch``: no ``::`` casts, no ``= ANY``, no ``now()``.

What stays in a backend is what truly differs: the statement chain that applies
a batch in one round trip on PostgreSQL (``postgres.py``: arrays unnested
server-side) and its event-id hand-out on SQLite (``sqlite.py``), the IN-list of
a GTIN filter (an array on PostgreSQL, one placeholder per GTIN on SQLite) and
the time a commit is stamped with (``now()`` on PostgreSQL, the writer's clock
on SQLite) — the statements take those as arguments.
"""

from __future__ import annotations

import re
from functools import lru_cache

from tagledger.ledger import rows

# A quoted string literal (left as it is) or a $N placeholder (renumbered).
_LITERAL_OR_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\$(\d+)")


@lru_cache(maxsize=1024)
def sqlite_placeholders(sql: str) -> str:
    """``$1``-style placeholders (PostgreSQL's) as SQLite's numbered ``?1``.

    ``$N`` inside a quoted literal is text and stays.  Cached: the callers'
    statements are constants, so each is translated once.
    """
    return _LITERAL_OR_PLACEHOLDER.sub(lambda m: m.group(0) if m.group(1) is None else f"?{m.group(1)}", sql)


def placeholders(n: int, first: int = 1) -> str:
    """``$first, ..., $(first + n - 1)``: a VALUES row or an IN list."""
    return ", ".join(f"${i}" for i in range(first, first + n))


SCHEMA_REVISION = "SELECT version_num FROM alembic_version"

# -- write side ---------------------------------------------------------------

#: The batch key row, inserted only if new; ``committed_at`` is the backend's commit time.
BATCH_COLUMNS = "reader_id, boot_id, seq, store_id, observations, gaps, sent_at, received_at, committed_at"


def insert_batch(committed_at: str) -> str:
    """The batch key ($1..$8, ``model``'s order) with ``committed_at`` (``now()`` or a placeholder)."""
    return f"""INSERT INTO batches ({BATCH_COLUMNS})
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {committed_at}) ON CONFLICT DO NOTHING"""


INSERT_EVENT = f"INSERT INTO events ({rows.EVENT_COLUMNS}) VALUES ({placeholders(20)})"

#: How an item row is replaced by its newest transition (after an ``INSERT INTO items``).
ITEM_CONFLICT = """ON CONFLICT (epc) DO UPDATE SET store_id = excluded.store_id, gtin = excluded.gtin,
  serial = excluded.serial, scheme = excluded.scheme, state = excluded.state, zone = excluded.zone,
  since = excluded.since, confidence = excluded.confidence, updated_at = excluded.updated_at"""
ITEM_WRITE_COLUMNS = f"{rows.ITEM_COLUMNS}, updated_at"
UPSERT_ITEM = f"INSERT INTO items ({ITEM_WRITE_COLUMNS}) VALUES ({placeholders(10)})\n{ITEM_CONFLICT}"

#: How a stock delta is added to its count (after an ``INSERT INTO stock``).
STOCK_WRITE_COLUMNS = "store_id, gtin, zone, state, count"
STOCK_CONFLICT = "ON CONFLICT (store_id, gtin, zone, state) DO UPDATE SET count = stock.count + excluded.count"
UPSERT_STOCK = f"INSERT INTO stock ({STOCK_WRITE_COLUMNS}) VALUES ($1, $2, $3, $4, $5)\n{STOCK_CONFLICT}"

LAST_EVENT_ID = "SELECT coalesce(max(id), 0) FROM events"

HAS_BATCH = "SELECT 1 FROM batches WHERE reader_id = $1 AND boot_id = $2 AND seq = $3"

#: The highest committed seq of one batch stream: an index look-up on the batches key.
MAX_SEQ = "SELECT max(seq) FROM batches WHERE reader_id = $1 AND boot_id = $2"

INSERT_REJECT = f"INSERT INTO rejects ({rows.REJECT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"

#: $6: a last will (always wins, keeps the newer stored time); see ``Ledger.record_reader_status``.
UPSERT_READER_STATUS = f"""INSERT INTO reader_status ({rows.READER_STATUS_COLUMNS}) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (reader_id) DO UPDATE SET store_id = excluded.store_id, state = excluded.state,
  at = CASE WHEN $6 AND reader_status.at > excluded.at THEN reader_status.at ELSE excluded.at END,
  detail = excluded.detail,
  stale_at = CASE WHEN excluded.at > reader_status.at THEN NULL ELSE reader_status.stale_at END
WHERE $6 OR excluded.at >= reader_status.at"""

READER_HEARTBEAT = """UPDATE reader_status SET heartbeat_at = $3, stale_at = $4
WHERE reader_id = $1 AND store_id = $2 AND (heartbeat_at IS NULL OR heartbeat_at <= $3)"""

# -- read side ----------------------------------------------------------------

ITEMS = f"SELECT {rows.ITEM_COLUMNS} FROM items ORDER BY epc"
ITEMS_OF_STORE = f"SELECT {rows.ITEM_COLUMNS} FROM items WHERE store_id = $1 ORDER BY epc"
ITEM = f"SELECT {rows.ITEM_COLUMNS} FROM items WHERE epc = $1"
#: $2: the id to page below (2**63 - 1 for the newest).
ITEM_HISTORY = f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE epc = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
REJECTS = f"SELECT {rows.REJECT_COLUMNS} FROM rejects ORDER BY id DESC LIMIT $1"
BATCH_COUNT = "SELECT count(*) FROM batches"
READER_STATUSES = f"SELECT {rows.READER_STATUS_READ_COLUMNS} FROM reader_status ORDER BY reader_id"
READER_STATUSES_OF_STORE = (
    f"SELECT {rows.READER_STATUS_READ_COLUMNS} FROM reader_status WHERE store_id = $1 ORDER BY reader_id"
)


@lru_cache(maxsize=256)
def stock(gtin_filter: str = "") -> str:
    """Current stock of store $1; ``gtin_filter`` is empty or ``" AND gtin ..."`` (from $2 on)."""
    return f"""SELECT gtin, zone, state, count FROM stock WHERE store_id = $1 AND count <> 0{gtin_filter}
 ORDER BY gtin, zone, state"""


@lru_cache(maxsize=256)
def as_of_stock(gtin_filter: str = "") -> str:
    """Stock of store $1 at the past time $2, as the sum of event deltas.

    +1 to where each event put an item; -1 from where it took it, which is the
    event's own store unless ``from_store_id`` says it came from another store.
    The three branches each use one index: ``events_store_at`` for the first
    two, ``events_from_store_at`` for transfers out.  ``gtin_filter`` is either
    empty or ``" AND gtin ..."`` (from $3 on).  Only non-zero counts come back,
    ordered.
    """
    return f"""SELECT gtin, zone, state, sum(d) AS n FROM (
  SELECT gtin, coalesce(to_zone, '') AS zone, to_state AS state, 1 AS d FROM events
   WHERE store_id = $1 AND at <= $2 AND gtin IS NOT NULL{gtin_filter}
  UNION ALL
  SELECT gtin, coalesce(from_zone, ''), from_state, -1 FROM events
   WHERE store_id = $1 AND from_store_id IS NULL AND at <= $2 AND from_state IS NOT NULL
     AND gtin IS NOT NULL{gtin_filter}
  UNION ALL
  SELECT gtin, coalesce(from_zone, ''), from_state, -1 FROM events
   WHERE from_store_id = $1 AND at <= $2 AND from_state IS NOT NULL AND gtin IS NOT NULL{gtin_filter}
) AS moves GROUP BY gtin, zone, state HAVING sum(d) <> 0 ORDER BY gtin, zone, state"""
