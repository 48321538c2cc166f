"""Reader heartbeats: when the last one came, and when the reader counts as stale.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

``heartbeat_at`` is the agent's time of its newest heartbeat; ``stale_at`` is
the gateway's time after which, without another heartbeat, the reader is
reported ``stale`` (three heartbeat intervals after it received the last one).
Both are null until a heartbeat arrives, and for agents that predate heartbeat
intervals: such a reader is never judged stale.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.BigInteger(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("reader_status") as table:
        table.add_column(sa.Column("heartbeat_at", TIMESTAMP, nullable=True))
        table.add_column(sa.Column("stale_at", TIMESTAMP, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reader_status") as table:
        table.drop_column("stale_at")
        table.drop_column("heartbeat_at")
