"""Time partitioning of events on PostgreSQL: TimescaleDB when available, else BRIN.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-01

Nothing to do on SQLite.  The DDL itself lives in ``tagledger.ledger.timescale``
(see its docstring for why it is kept in one module).
"""

from __future__ import annotations

from alembic import op

from tagledger.ledger import timescale

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if timescale.available(bind):
        timescale.apply(bind)
    else:
        timescale.apply_plain(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    timescale.revert(bind)
