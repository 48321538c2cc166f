"""Tag anomalies the gateway found: duplicated EPC encodings, sales of untagged products.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

``gateway.anomalies`` finds them; the gateway writes what it found or what
grew (``gateway.anomaly_store``) through ``Ledger.execute_all``, one row per
(store, kind, key) -- the EPC of a duplicated encoding, the GTIN of an untagged
product -- with its evidence as JSON.  The API lists them per store
(``GET /v1/stores/{store_id}/anomalies``).  The items of a duplicated EPC are
kept out of the counts by their state (``duplicated``), not by this table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "anomalies",
        sa.Column("store_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("gtin", sa.Text),
        sa.Column("epc", sa.Text),
        sa.Column("first_us", sa.BigInteger, nullable=False),
        sa.Column("last_us", sa.BigInteger, nullable=False),
        sa.Column("units", sa.BigInteger, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("anomalies")
