"""Initial ledger: batches, events, items, stock, rejects, reader_status.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

The types are spelled out here rather than imported from ``schema.py`` so that
this revision keeps creating what it created when ``schema.py`` moves on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.BigInteger(), "sqlite")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "batches",
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
    op.create_table(
        "events",
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
    )
    op.create_index("events_epc_id", "events", ["epc", "id"])
    op.create_index("events_store_at", "events", ["store_id", "at"])
    op.create_index(
        "events_from_store_at",
        "events",
        ["from_store_id", "at"],
        postgresql_where=sa.text("from_store_id IS NOT NULL"),
        sqlite_where=sa.text("from_store_id IS NOT NULL"),
    )
    op.create_table(
        "items",
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
    )
    op.create_index("items_store", "items", ["store_id"])
    op.create_table(
        "stock",
        sa.Column("store_id", sa.Text, primary_key=True),
        sa.Column("gtin", sa.Text, primary_key=True),
        sa.Column("zone", sa.Text, primary_key=True),
        sa.Column("state", sa.Text, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rejects",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("meta", JSON, nullable=False),
    )
    op.create_table(
        "reader_status",
        sa.Column("reader_id", sa.Text, primary_key=True),
        sa.Column("store_id", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )


def downgrade() -> None:
    for table in ("reader_status", "rejects", "stock", "items", "events", "batches"):
        op.drop_table(table)
