"""OAuth2: user passwords, confidential clients, authorization codes, issued tokens.

Secrets are stored only as hashes: passwords with scrypt, client secrets, codes and
tokens with SHA-256 (they carry 256 random bits, so a fast hash suffices).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.String(36)


def upgrade() -> None:
    op.add_column("users", sa.Column("password_hash", sa.String(255)))
    op.create_table(
        "oauth_clients",
        sa.Column("id", ID, primary_key=True),
        sa.Column("owner_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("principal_id", ID, sa.ForeignKey("users.id"), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_index("ix_oauth_clients_owner_id", "oauth_clients", ["owner_id"])
    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.String(128)),
        sa.Column("offline", sa.Boolean, nullable=False),
        sa.Column("grant_id", ID, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "oauth_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("resource_server", sa.String(255), nullable=False),
        sa.Column("grant_id", ID, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_oauth_tokens_user_id", "oauth_tokens", ["user_id"])
    op.create_index("ix_oauth_tokens_grant_id", "oauth_tokens", ["grant_id"])


def downgrade() -> None:
    for table in ("oauth_tokens", "oauth_codes", "oauth_clients"):
        op.drop_table(table)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_hash")
