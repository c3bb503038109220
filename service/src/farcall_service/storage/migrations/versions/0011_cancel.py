"""Cancellation: notices of tasks cancelled while an endpoint held them.

A cancelled task is a task in the status ``cancelled`` (no column: the status is a
string, and the queue's partial index holds unfinished tasks only). ``task_cancels``
keeps, per endpoint, the tasks it must stop, until a claim of it takes them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
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
        "task_cancels",
        sa.Column("task_id", sa.String(36), primary_key=True),
        sa.Column("endpoint_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_task_cancels_endpoint_id", "task_cancels", ["endpoint_id"])


def downgrade() -> None:
    op.drop_index("ix_task_cancels_endpoint_id", "task_cancels")
    op.drop_table("task_cancels")
