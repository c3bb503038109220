"""The queue index holds unfinished tasks only.

It held every task an endpoint ever ran, so it grew with the history, and recording a
result moved the task's entry from the running ones to the finished ones: two pages
written where deleting one entry writes one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The values of QUEUED and RUNNING when this migration was written.
UNFINISHED = sa.text("status IN ('waiting-for-ep', 'running')")


def upgrade() -> None:
    op.drop_index("ix_tasks_queue", table_name="tasks")
    op.create_index("ix_tasks_queue", "tasks", ["endpoint_id", "status", "seq"],
                    sqlite_where=UNFINISHED, postgresql_where=UNFINISHED)


def downgrade() -> None:
    op.drop_index("ix_tasks_queue", table_name="tasks")
    op.create_index("ix_tasks_queue", "tasks", ["endpoint_id", "status", "seq"])
