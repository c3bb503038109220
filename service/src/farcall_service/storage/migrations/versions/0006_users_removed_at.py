"""Users can be removed: ``users.removed_at``.

A removed user's row stays, since their tasks, task groups and deleted functions and
endpoints still name it; the column says the user is gone, and the name stays taken.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("removed_at", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "removed_at")
