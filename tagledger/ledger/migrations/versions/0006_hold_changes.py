"""Holds by store and time of their last change, for change streams.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

A reservation changes what a store may sell as much as an item does, so the
change streams (SSE and webhooks) look for holds changed since their mark as
well as for item events: ``holds_changed`` makes that a range scan, and
``webhook_marks.hold_us`` keeps the webhook deliveries' hold mark per store
(0 for marks saved before: the deliverer then starts the store's holds from
now, as it does for a store never delivered from).

``webhook_pending`` holds the deliveries handed out and not yet delivered or
given up, written in the transaction that saves the marks which produced them:
a deliverer that stops mid-retry leaves them to the next one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("holds_changed", "holds", ["store_id", "updated_at"])
    op.add_column("webhook_marks", sa.Column("hold_us", sa.BigInteger, nullable=False, server_default=sa.text("0")))
    op.create_table(
        "webhook_pending",
        sa.Column("delivery_id", sa.Text, primary_key=True),
        sa.Column("subscription_id", sa.Text, nullable=False),
        sa.Column("store_id", sa.Text, nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhook_pending")
    with op.batch_alter_table("webhook_marks") as batch:
        batch.drop_column("hold_us")
    op.drop_index("holds_changed", table_name="holds")
