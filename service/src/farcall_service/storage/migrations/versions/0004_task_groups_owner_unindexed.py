"""Drop the index on task_groups.owner_id: no query reads it.

A task group is looked up by its id only, and every submission wrote one more page
(one WAL frame of eight) to keep the index up to date.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_task_groups_owner_id", table_name="task_groups")


def downgrade() -> None:
    op.create_index("ix_task_groups_owner_id", "task_groups", ["owner_id"])
