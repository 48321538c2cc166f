"""Alembic environment: runs on a connection handed in by ``tagledger.ledger.migrate``.

Online only.  The caller opens the connection (async engine, run through
``run_sync``), takes the migration lock, and commits; this file just points
Alembic at it.
"""

from __future__ import annotations

from alembic import context

from tagledger.ledger.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("tagledger migrations run online, through tagledger.ledger.migrate.migrate()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
