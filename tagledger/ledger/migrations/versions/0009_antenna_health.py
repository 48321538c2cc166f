"""Per-antenna health: read rate from the agents' heartbeats, down flags from their status.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

The staff console shows which reader and which antenna is down and how fast each
antenna reads.  Heartbeats (``reads_per_s`` by antenna port) were ignored by the
gateway until now, and a status's ``antennas_down`` only reached the state
machine; one row per reader x antenna port keeps the newest of both.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "antenna_health",
        sa.Column("reader_id", sa.Text, primary_key=True),
        sa.Column("port", sa.Integer, primary_key=True),
        sa.Column("store_id", sa.Text, nullable=False),
        sa.Column("reads_per_s", sa.Float, nullable=False, server_default=sa.text("0")),
        sa.Column("heartbeat_us", sa.BigInteger, nullable=True),
        sa.Column("down", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("status_us", sa.BigInteger, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("antenna_health")
