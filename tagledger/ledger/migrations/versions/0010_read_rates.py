"""What the gateway's presence model learned of each item's reads.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

The presence model (``gateway.presence``) judges an item's silence by that
item's own read rate: the mean gap between its reads and the largest recent
one.  Kept here, a restart (or a store handed to another gateway) resumes with
what was learned instead of the conservative default for unknown items.
Written by the gateway through ``Ledger.execute_all`` (``gateway.read_rates``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "read_rates",
        sa.Column("store_id", sa.Text, primary_key=True),
        sa.Column("epc", sa.Text, primary_key=True),
        sa.Column("gap_us", sa.Float, nullable=False),
        sa.Column("gap_max_us", sa.Float, nullable=False),
        sa.Column("gaps", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("read_rates")
