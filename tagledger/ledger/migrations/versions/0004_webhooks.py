"""Webhook subscriptions and their delivery log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-01-03

``webhook_subscriptions`` holds where availability changes are POSTed (URL, the
HMAC secret, an optional store filter).  The secret is kept as given, unlike API
keys: signing needs it.  ``webhook_deliveries`` logs every attempt (one row per
attempt, grouped by ``delivery_id``) for the delivery-log endpoint.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.BigInteger(), "sqlite")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("stores", sa.Text),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("subscription_id", sa.Text, nullable=False),
        sa.Column("delivery_id", sa.Text, nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("store_id", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("outcome", sa.Text, nullable=False),
    )
    op.create_index("webhook_deliveries_by_subscription", "webhook_deliveries", ["subscription_id", "id"])


def downgrade() -> None:
    op.drop_index("webhook_deliveries_by_subscription", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_subscriptions")
