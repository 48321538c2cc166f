"""Webhook progress that survives a restart, and one deliverer among API processes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

``webhook_marks`` keeps, per store, the last ledger event id whose changes were
handed to the webhook deliveries, so an API restart resumes where it stopped
instead of skipping what committed meanwhile.  ``webhook_lease`` names the one
API process that delivers (one row, renewed each poll, taken over when it
lapses), so several worker processes with webhooks enabled deliver each change
once.  Lease times are integer µs on both backends: only the comparison with
the holder's own clock matters.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_marks",
        sa.Column("store_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "webhook_lease",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhook_lease")
    op.drop_table("webhook_marks")
