"""Keep the serialized exception object of a failed task, beside its traceback text.

The SDK rebuilds the original exception from it; the official SDK ignores it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("exception_data", sa.Text))


def downgrade() -> None:
    op.drop_column("tasks", "exception_data")
