"""Result streams: task groups marked streamed, and the outbox of their results.

A streamed group's results are published on an AMQP queue (the official Executor
reads them there). Each ended task of such a group gets a ``result_outbox`` row in
the transaction that ends it, and the row goes once the broker has confirmed the
message: the database is never behind what was published.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ALTER on both databases (a batch copy of the table would trip SQLite's
    # foreign keys from tasks).
    op.add_column("task_groups", sa.Column("streamed", sa.Boolean, nullable=False,
                                           server_default=sa.false()))
    op.create_table(
        "result_outbox",
        sa.Column("task_id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("result_outbox")
    op.drop_column("task_groups", "streamed")
