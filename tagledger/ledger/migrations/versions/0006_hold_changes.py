"""Holds by store and time of their last change, for change streams.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

A reservation changes what a store may sell as much as an item does, so the
change streams (SSE and webhooks) look for holds changed since their mark as
well as for item events: ``holds_changed`` makes that a range scan.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("holds_changed", "holds", ["store_id", "updated_at"])


def downgrade() -> None:
    op.drop_index("holds_changed", table_name="holds")
