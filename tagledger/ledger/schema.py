"""The ledger's tables: one SQLAlchemy Core definition for PostgreSQL and SQLite.

This module is the reference the migrations are checked against
(``tests/ledger/test_migrations.py`` compares a migrated database with this
``metadata``); the backends use hand-written SQL against the same names
(``queries.py``: one text per statement for both).

Time
    Every timestamp is UTC.  PostgreSQL stores ``timestamptz``; SQLite has no
    time type, so it stores **integer microseconds since the Unix epoch** — the
    unit the whole system speaks (``tagledger.clock``), exact, compact, and
    ordered the same way numerically as in time, so the ``(store_id, at)`` index
    serves as-of queries on both backends.  ``TIMESTAMP`` below is that variant.

Events and the hypertable
    ``events`` is append-only.  Its primary key is ``(id, at)`` rather than
    ``id`` alone because a TimescaleDB hypertable requires its time column in
    every unique index.  ``id`` is an identity on PostgreSQL; SQLite has no
    identity on a composite key, so its backend hands out ids itself inside the
    write transaction (``max(id) + 1`` under ``BEGIN IMMEDIATE``: one writer).

Stock
    ``stock`` mirrors ``items`` grouped by (store_id, gtin, zone, state) for
    items that have a GTIN, every state included (sold and departed counts are
    useful shrink figures; "on hand" is the API's choice of states).  An item
    without a zone is counted under zone ``""`` because a key column cannot be
    NULL.  It is maintained by delta upserts in the same transaction as the
    events, never recomputed.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

#: timestamptz on PostgreSQL, integer µs since the epoch on SQLite.
TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.BigInteger(), "sqlite")
#: A bigint id that SQLite makes its rowid alias (only as a lone primary key).
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(JSONB(), "postgresql")

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("reader_id", sa.Text, primary_key=True),
    sa.Column("boot_id", sa.Text, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("store_id", sa.Text, nullable=False),
    sa.Column("observations", sa.Integer, nullable=False),
    sa.Column("gaps", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("sent_at", TIMESTAMP, nullable=False),
    sa.Column("received_at", TIMESTAMP, nullable=False),
    sa.Column("committed_at", TIMESTAMP, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("at", TIMESTAMP, primary_key=True),
    sa.Column("store_id", sa.Text, nullable=False),
    sa.Column("epc", sa.Text, nullable=False),
    sa.Column("gtin", sa.Text),
    sa.Column("serial", sa.Text),
    sa.Column("scheme", sa.Text, nullable=False),
    sa.Column("from_state", sa.Text),
    sa.Column("to_state", sa.Text, nullable=False),
    sa.Column("from_zone", sa.Text),
    sa.Column("to_zone", sa.Text),
    sa.Column("from_store_id", sa.Text),
    sa.Column("confidence", sa.Double, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("reader_id", sa.Text),
    sa.Column("antenna", sa.Integer),
    sa.Column("batch_reader_id", sa.Text),
    sa.Column("batch_boot_id", sa.Text),
    sa.Column("batch_seq", sa.BigInteger),
    sa.Column("recorded_at", TIMESTAMP, nullable=False),
    # An item's history, newest first, paged by id.
    sa.Index("events_epc_id", "epc", "id"),
    # As-of stock: the events of one store up to a time.
    sa.Index("events_store_at", "store_id", "at"),
    # As-of stock of the store an item was transferred out of; few rows have it.
    sa.Index(
        "events_from_store_at",
        "from_store_id",
        "at",
        postgresql_where=sa.text("from_store_id IS NOT NULL"),
        sqlite_where=sa.text("from_store_id IS NOT NULL"),
    ),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("epc", sa.Text, primary_key=True),
    sa.Column("store_id", sa.Text, nullable=False),
    sa.Column("gtin", sa.Text),
    sa.Column("serial", sa.Text),
    sa.Column("scheme", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("zone", sa.Text),
    sa.Column("since", TIMESTAMP, nullable=False),
    sa.Column("confidence", sa.Double, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
    sa.Index("items_store", "store_id"),
)

stock = sa.Table(
    "stock",
    metadata,
    sa.Column("store_id", sa.Text, primary_key=True),
    sa.Column("gtin", sa.Text, primary_key=True),
    sa.Column("zone", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)

rejects = sa.Table(
    "rejects",
    metadata,
    sa.Column("id", BIGID, sa.Identity(), primary_key=True),
    sa.Column("received_at", TIMESTAMP, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),  # at most MAX_REJECT_BYTES
    sa.Column("meta", JSON, nullable=False),
)

reader_status = sa.Table(
    "reader_status",
    metadata,
    sa.Column("reader_id", sa.Text, primary_key=True),
    sa.Column("store_id", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("at", TIMESTAMP, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("heartbeat_at", TIMESTAMP, nullable=True),  # revision 0007
    sa.Column("stale_at", TIMESTAMP, nullable=True),
)

# Per-antenna health (revision 0009): the read rate each agent's heartbeat reports and
# the down flag of its last status, for "which antenna is down".  Written by the
# gateway through ``Ledger.execute_all`` (``gateway.antennas``), read by the API.
# Times are plain µs integers on both backends.
antenna_health = sa.Table(
    "antenna_health",
    metadata,
    sa.Column("reader_id", sa.Text, primary_key=True),
    sa.Column("port", sa.Integer, primary_key=True),
    sa.Column("store_id", sa.Text, nullable=False),
    sa.Column("reads_per_s", sa.Float, nullable=False, server_default=sa.text("0")),
    sa.Column("heartbeat_us", sa.BigInteger, nullable=True),
    sa.Column("down", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("status_us", sa.BigInteger, nullable=True),
)

# Learned read rates (revision 0010): the presence model's mean and largest recent
# gap between an item's reads (``gateway.presence``), so a restart does not reset
# them.  Written by the gateway through ``Ledger.execute_all`` (``gateway.read_rates``).
read_rates = sa.Table(
    "read_rates",
    metadata,
    sa.Column("store_id", sa.Text, primary_key=True),
    sa.Column("epc", sa.Text, primary_key=True),
    sa.Column("gap_us", sa.Float, nullable=False),
    sa.Column("gap_max_us", sa.Float, nullable=False),
    sa.Column("gaps", sa.BigInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)

# Tag anomalies (revision 0011): duplicated EPC encodings and sales of untagged
# products found by ``gateway.anomalies``, one row per (store, kind, EPC or GTIN),
# evidence as JSON.  Written by the gateway (``gateway.anomaly_store``), listed
# by ``GET /v1/stores/{store_id}/anomalies``.
anomalies = sa.Table(
    "anomalies",
    metadata,
    sa.Column("store_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("gtin", sa.Text),
    sa.Column("epc", sa.Text),
    sa.Column("first_us", sa.BigInteger, nullable=False),
    sa.Column("last_us", sa.BigInteger, nullable=False),
    sa.Column("units", sa.BigInteger, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)

# ---------------------------------------------------------------------------------------------
# The API's tables, owned by ``cloud``: the ledger core never reads or writes them (only the
# availability look-ups of ``ledger.channel`` read ``holds``, with stock, in one statement).
# Their SQL lives in the cloud's repositories: ``cloud.reservations.repository`` (holds,
# hold_cursors), ``cloud.auth.repository`` (api_keys), ``cloud.webhooks.repository``
# (webhook_*), ``cloud.audit.repository`` (count_*, book_*, adjustments, audit_log).  They are
# defined here so that one Alembic chain migrates the one database.
# ---------------------------------------------------------------------------------------------

# Reservations and API keys (revision 0003).

holds = sa.Table(
    "holds",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("store_id", sa.Text, nullable=False),
    sa.Column("gtin", sa.Text, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("picked", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("idempotency_key", sa.Text, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("expires_at", TIMESTAMP, nullable=False),
    sa.Column("confirmed_at", TIMESTAMP),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
    # A replayed create (same caller, same key) finds the hold it made.
    sa.UniqueConstraint("owner", "idempotency_key", name="holds_owner_idempotency_key"),
    # Only active holds count as reserved; the partial index keeps that sum small.
    sa.Index(
        "holds_active",
        "store_id",
        "gtin",
        "expires_at",
        postgresql_where=sa.text("state IN ('held', 'confirmed')"),
        sqlite_where=sa.text("state IN ('held', 'confirmed')"),
    ),
    # Change streams find a store's holds changed since a moment (revision 0006).
    sa.Index("holds_changed", "store_id", "updated_at"),
)

hold_cursors = sa.Table(
    "hold_cursors",
    metadata,
    sa.Column("store_id", sa.Text, primary_key=True),
    sa.Column("gtin", sa.Text, primary_key=True),
    sa.Column("last_event_id", sa.BigInteger, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("secret_sha256", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),  # JSON list
    sa.Column("stores", sa.Text),  # JSON list, NULL = every store
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("revoked_at", TIMESTAMP),
)

webhook_subscriptions = sa.Table(
    "webhook_subscriptions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),  # kept as given: HMAC signing needs it
    sa.Column("stores", sa.Text),  # JSON list, NULL = every store
    sa.Column("created_at", TIMESTAMP, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", BIGID, sa.Identity(), primary_key=True),
    sa.Column("subscription_id", sa.Text, nullable=False),
    sa.Column("delivery_id", sa.Text, nullable=False),  # one delivery, several attempts
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("store_id", sa.Text, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", TIMESTAMP, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("outcome", sa.Text, nullable=False),  # delivered | retrying | failed
    # The log endpoint pages a subscription's attempts newest first.
    sa.Index("webhook_deliveries_by_subscription", "subscription_id", "id"),
)

# Deliveries handed out and not yet delivered or given up (revision 0006): written with the
# marks that produced them, so a deliverer that stops leaves them for the next to finish.
webhook_pending = sa.Table(
    "webhook_pending",
    metadata,
    sa.Column("delivery_id", sa.Text, primary_key=True),
    sa.Column("subscription_id", sa.Text, nullable=False),
    sa.Column("store_id", sa.Text, nullable=False),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),  # made so far
    sa.Column("created_us", sa.BigInteger, nullable=False),  # the deliverer's clock
)

# Per store, how far the webhook deliveries got: the last event id, and (revision 0006)
# the last hold change (µs) whose changes went to them.
webhook_marks = sa.Table(
    "webhook_marks",
    metadata,
    sa.Column("store_id", sa.Text, primary_key=True),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("hold_us", sa.BigInteger, nullable=False, server_default=sa.text("0")),
)

# One row: the API process that delivers webhooks, until expires_us (its own clock, µs).
webhook_lease = sa.Table(
    "webhook_lease",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("expires_us", sa.BigInteger, nullable=False),
)

# Auditor tools (revision 0008): count sessions, book (ERP) stock, approved adjustments and
# the audit log; see ``cloud.audit``.  Written and read through ``Ledger.fetch/execute``.

count_sessions = sa.Table(
    "count_sessions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("store_id", sa.Text, nullable=False),
    sa.Column("zones", sa.Text),  # JSON list, NULL = the whole store
    sa.Column("state", sa.Text, nullable=False),  # open | closed
    sa.Column("opened_at", TIMESTAMP, nullable=False),
    sa.Column("opened_by", sa.Text, nullable=False),
    sa.Column("closed_at", TIMESTAMP),
    sa.Column("closed_by", sa.Text),
    sa.Index("count_sessions_by_store", "store_id", "opened_at"),
)

# What the ledger held when the count was opened: the items the count should find.
count_expected = sa.Table(
    "count_expected",
    metadata,
    sa.Column("session_id", sa.Text, primary_key=True),
    sa.Column("epc", sa.Text, primary_key=True),
    sa.Column("gtin", sa.Text),
    sa.Column("zone", sa.Text),
)

# Reads sent to a count (handheld sweeps, or fixed readers' reads forwarded to it).
count_reads = sa.Table(
    "count_reads",
    metadata,
    sa.Column("id", BIGID, sa.Identity(), primary_key=True),
    sa.Column("session_id", sa.Text, nullable=False),
    sa.Column("epc", sa.Text, nullable=False),
    sa.Column("zone", sa.Text),
    sa.Column("reader_id", sa.Text),
    sa.Column("antenna", sa.Integer),
    sa.Column("at", TIMESTAMP, nullable=False),
    sa.Index("count_reads_by_session", "session_id", "epc"),
)

# The result, written once when the count closes: per GTIN, and the items not found.
count_results = sa.Table(
    "count_results",
    metadata,
    sa.Column("session_id", sa.Text, primary_key=True),
    sa.Column("gtin", sa.Text, primary_key=True),  # "" for items without a GTIN
    sa.Column("expected", sa.BigInteger, nullable=False),
    sa.Column("counted", sa.BigInteger, nullable=False),
)

count_missing = sa.Table(
    "count_missing",
    metadata,
    sa.Column("session_id", sa.Text, primary_key=True),
    sa.Column("epc", sa.Text, primary_key=True),
    sa.Column("gtin", sa.Text),
    sa.Column("zone", sa.Text),
)

# Book stock imported from an ERP: one import per store and as-of time.
book_imports = sa.Table(
    "book_imports",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("store_id", sa.Text, nullable=False),
    sa.Column("as_of", TIMESTAMP, nullable=False),
    sa.Column("imported_at", TIMESTAMP, nullable=False),
    sa.Column("imported_by", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),  # file name or "api"
    sa.Column("lines", sa.Integer, nullable=False),
    sa.Index("book_imports_by_store", "store_id", "as_of"),
)

book_lines = sa.Table(
    "book_lines",
    metadata,
    sa.Column("import_id", sa.Text, primary_key=True),
    sa.Column("gtin", sa.Text, primary_key=True),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("unit_price", sa.Double),
)

# An accepted difference between RFID and book stock, with who accepted it.
adjustments = sa.Table(
    "adjustments",
    metadata,
    sa.Column("id", BIGID, sa.Identity(), primary_key=True),
    sa.Column("import_id", sa.Text, nullable=False),
    sa.Column("store_id", sa.Text, nullable=False),
    sa.Column("gtin", sa.Text, nullable=False),
    sa.Column("book_quantity", sa.BigInteger, nullable=False),
    sa.Column("rfid_quantity", sa.BigInteger, nullable=False),
    sa.Column("difference", sa.BigInteger, nullable=False),
    sa.Column("unit_price", sa.Double),
    sa.Column("value", sa.Double),
    sa.Column("approved_by", sa.Text, nullable=False),
    sa.Column("approved_at", TIMESTAMP, nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.UniqueConstraint("import_id", "gtin", name="adjustments_import_gtin"),
)

# Append-only: who did what with the auditor tools (imports, approvals, counts, exports).
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BIGID, sa.Identity(), primary_key=True),
    sa.Column("at", TIMESTAMP, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("store_id", sa.Text),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),  # JSON object
    sa.Index("audit_log_by_store", "store_id", "id"),
)
