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


def downgrade() -> None:
    with op.batch_alter_table("webhook_marks") as batch:
        batch.drop_column("hold_us")
    op.drop_index("holds_changed", table_name="holds")
