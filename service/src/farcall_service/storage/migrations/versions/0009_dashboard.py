"""The dashboard: an admin role, and each owner's tasks newest first.

``users.admin`` marks who may open the dashboard's admin pages. ``ix_tasks_owner``
lets the tasks page show a page of one owner's tasks, newest first, without reading
the others' (the page keys on ``seq``, so page 1,000 costs what page 1 does).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("admin", sa.Boolean, nullable=False,
                                     server_default=sa.false()))
    op.create_index("ix_tasks_owner", "tasks", ["owner_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_tasks_owner", "tasks")
    op.drop_column("users", "admin")
