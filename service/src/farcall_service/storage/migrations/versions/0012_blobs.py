"""Blobs: large results and payloads kept in the blob store, and whose they are.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("task_id", sa.String(36)),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_blobs_task_id", "blobs", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_blobs_task_id", "blobs")
    op.drop_table("blobs")
