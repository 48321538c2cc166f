"""Auditor tools: count sessions, book (ERP) stock and its approved adjustments, the audit log.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

A count session keeps what the ledger held when it was opened (``count_expected``),
the reads sent to it (``count_reads``) and, once closed, its result per GTIN and the
items it did not find.  Book stock comes from ERP files (``book_imports``,
``book_lines``); a difference an auditor accepts becomes an ``adjustments`` row naming
who accepted it.  ``audit_log`` is append-only: every import, approval, count and
export, with its actor.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.BigInteger(), "sqlite")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "count_sessions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("store_id", sa.Text, nullable=False),
        sa.Column("zones", sa.Text),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("opened_at", TIMESTAMP, nullable=False),
        sa.Column("opened_by", sa.Text, nullable=False),
        sa.Column("closed_at", TIMESTAMP),
        sa.Column("closed_by", sa.Text),
    )
    op.create_index("count_sessions_by_store", "count_sessions", ["store_id", "opened_at"])
    op.create_table(
        "count_expected",
        sa.Column("session_id", sa.Text, primary_key=True),
        sa.Column("epc", sa.Text, primary_key=True),
        sa.Column("gtin", sa.Text),
        sa.Column("zone", sa.Text),
    )
    op.create_table(
        "count_reads",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("session_id", sa.Text, nullable=False),
        sa.Column("epc", sa.Text, nullable=False),
        sa.Column("zone", sa.Text),
        sa.Column("reader_id", sa.Text),
        sa.Column("antenna", sa.Integer),
        sa.Column("at", TIMESTAMP, nullable=False),
    )
    op.create_index("count_reads_by_session", "count_reads", ["session_id", "epc"])
    op.create_table(
        "count_results",
        sa.Column("session_id", sa.Text, primary_key=True),
        sa.Column("gtin", sa.Text, primary_key=True),
        sa.Column("expected", sa.BigInteger, nullable=False),
        sa.Column("counted", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "count_missing",
        sa.Column("session_id", sa.Text, primary_key=True),
        sa.Column("epc", sa.Text, primary_key=True),
        sa.Column("gtin", sa.Text),
        sa.Column("zone", sa.Text),
    )
    op.create_table(
        "book_imports",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("store_id", sa.Text, nullable=False),
        sa.Column("as_of", TIMESTAMP, nullable=False),
        sa.Column("imported_at", TIMESTAMP, nullable=False),
        sa.Column("imported_by", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("lines", sa.Integer, nullable=False),
    )
    op.create_index("book_imports_by_store", "book_imports", ["store_id", "as_of"])
    op.create_table(
        "book_lines",
        sa.Column("import_id", sa.Text, primary_key=True),
        sa.Column("gtin", sa.Text, primary_key=True),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("unit_price", sa.Double),
    )
    op.create_table(
        "adjustments",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("import_id", sa.Text, nullable=False),
        sa.Column("store_id", sa.Text, nullable=False),
        sa.Column("gtin", sa.Text, nullable=False),
        sa.Column("book_quantity", sa.BigInteger, nullable=False),
        sa.Column("rfid_quantity", sa.BigInteger, nullable=False),
        sa.Column("difference", sa.BigInteger, nullable=False),
        sa.Column("unit_price", sa.Double),
        sa.Column("value", sa.Double),
        sa.Column("approved_by", sa.Text, nullable=False),
        sa.Column("approved_at", TIMESTAMP, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("import_id", "gtin", name="adjustments_import_gtin"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("store_id", sa.Text),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("audit_log_by_store", "audit_log", ["store_id", "id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("adjustments")
    op.drop_table("book_lines")
    op.drop_table("book_imports")
    op.drop_table("count_missing")
    op.drop_table("count_results")
    op.drop_table("count_reads")
    op.drop_table("count_expected")
    op.drop_table("count_sessions")
