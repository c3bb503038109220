"""Device authorization grants (RFC 8628) for logging in without a browser.

One table of grants waiting for their user; the device code and the user code are
stored only as SHA-256 hashes. Expired grants are deleted as new ones are made, so the
table holds only the last few minutes' logins.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.String(36)


def upgrade() -> None:
    op.create_table(
        "oauth_device_grants",
        sa.Column("device_code_hash", sa.String(64), primary_key=True),
        sa.Column("user_code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("grant_id", ID, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("user_id", ID, sa.ForeignKey("users.id")),
        sa.Column("interval", sa.Float, nullable=False),
        sa.Column("last_polled_at", sa.Float),
        sa.Column("used", sa.Boolean, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_oauth_device_grants_expires_at", "oauth_device_grants", ["expires_at"])


def downgrade() -> None:
    op.drop_table("oauth_device_grants")
