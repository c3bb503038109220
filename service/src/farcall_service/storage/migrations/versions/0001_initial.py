"""The first schema: identity, functions, containers, endpoints, task groups, tasks.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(36)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])
    op.create_table(
        "groups",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "memberships",
        sa.Column("group_id", ID, sa.ForeignKey("groups.id"), primary_key=True),
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), primary_key=True),
    )
    op.create_index("ix_memberships_user_id", "memberships", ["user_id"])
    op.create_table(
        "containers",
        sa.Column("id", ID, primary_key=True),
        sa.Column("owner_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_containers_owner_id", "containers", ["owner_id"])
    op.create_table(
        "functions",
        sa.Column("id", ID, primary_key=True),
        sa.Column("owner_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("group_id", ID, sa.ForeignKey("groups.id")),
        sa.Column("container_id", ID, sa.ForeignKey("containers.id")),
        sa.Column("ha_endpoint_id", ID),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_index("ix_functions_owner_id", "functions", ["owner_id"])
    op.create_index("ix_functions_group_id", "functions", ["group_id"])
    op.create_table(
        "endpoints",
        sa.Column("id", ID, primary_key=True),
        sa.Column("owner_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(255)),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("allowed_functions", sa.JSON),
        sa.Column("locked_until", sa.Float, nullable=False),
        sa.Column("session_id", sa.String(64)),
        sa.Column("last_seen", sa.Float),
        sa.Column("heartbeat", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_index("ix_endpoints_owner_id", "endpoints", ["owner_id"])
    op.create_table(
        "task_groups",
        sa.Column("id", ID, primary_key=True),
        sa.Column("owner_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_task_groups_owner_id", "task_groups", ["owner_id"])
    op.create_table(
        "tasks",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", ID, nullable=False, unique=True),
        sa.Column("owner_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("function_id", ID, sa.ForeignKey("functions.id"), nullable=False),
        sa.Column("endpoint_id", ID, sa.ForeignKey("endpoints.id"), nullable=False),
        sa.Column("task_group_id", ID, sa.ForeignKey("task_groups.id"), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("claim_session", sa.String(64)),
        sa.Column("claimed_at", sa.Float),
        sa.Column("result", sa.Text),
        sa.Column("exception", sa.Text),
        sa.Column("details", sa.JSON),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("completion_t", sa.Float),
    )
    op.create_index("ix_tasks_task_group_id", "tasks", ["task_group_id"])
    op.create_index("ix_tasks_queue", "tasks", ["endpoint_id", "status", "seq"])


def downgrade() -> None:
    for table in (
        "tasks",
        "task_groups",
        "endpoints",
        "functions",
        "containers",
        "memberships",
        "groups",
        "tokens",
        "users",
    ):
        op.drop_table(table)
