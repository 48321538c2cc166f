"""Channel tables: reservations (holds), their sale cursors, and API keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-01-02

``holds`` are the reservations of the channel API; ``hold_cursors`` remembers, per
store x GTIN, the last ``sold`` event already matched against confirmed holds;
``api_keys`` stores keys by id with the SHA-256 of their secret, never the secret.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.BigInteger(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "holds",
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
        sa.UniqueConstraint("owner", "idempotency_key", name="holds_owner_idempotency_key"),
    )
    op.create_index(
        "holds_active",
        "holds",
        ["store_id", "gtin", "expires_at"],
        postgresql_where=sa.text("state IN ('held', 'confirmed')"),
        sqlite_where=sa.text("state IN ('held', 'confirmed')"),
    )
    op.create_table(
        "hold_cursors",
        sa.Column("store_id", sa.Text, primary_key=True),
        sa.Column("gtin", sa.Text, primary_key=True),
        sa.Column("last_event_id", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("secret_sha256", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("stores", sa.Text),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("hold_cursors")
    op.drop_index("holds_active", table_name="holds")
    op.drop_table("holds")
