"""Per-user usage counters: unfinished tasks and stored characters.

The quotas (``max_queued_tasks_per_user``, ``max_stored_bytes_per_user``) are checked
against these counters, kept in the same transactions that submit and record tasks,
so a submission reads no task to know its owner's usage. Seeded from the tasks.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("unfinished_tasks", sa.BigInteger, nullable=False),
        sa.Column("stored_bytes", sa.BigInteger, nullable=False),
    )
    op.execute(
        "INSERT INTO usage (user_id, unfinished_tasks, stored_bytes) "
        "SELECT owner_id, "
        "SUM(CASE WHEN status IN ('waiting-for-ep', 'running') THEN 1 ELSE 0 END), "
        "SUM(LENGTH(payload) + COALESCE(LENGTH(result), 0) + COALESCE(LENGTH(exception), 0)"
        " + COALESCE(LENGTH(exception_data), 0)) "
        "FROM tasks GROUP BY owner_id"
    )


def downgrade() -> None:
    op.drop_table("usage")
