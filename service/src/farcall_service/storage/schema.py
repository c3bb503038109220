"""Table definitions used by the SQL store's queries.

The schema itself is created and changed only by the migrations in ``migrations/``;
``tests/test_storage.py`` checks that both agree. Types are portable (no SQLite-only
types), so a PostgreSQL URL works unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa

from farcall_service.storage.interface import QUEUED, RUNNING

metadata = sa.MetaData()

ID = sa.String(36)
#: BIGINT on real databases, INTEGER on SQLite, where only that aliases the row id.
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("password_hash", sa.String(255)),
    #: Set when the user was removed: the row stays for what still names it.
    sa.Column("removed_at", sa.Float),
    #: May open the dashboard's admin pages (``farcall server user add --admin``).
    sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

groups = sa.Table(
    "groups",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("group_id", ID, sa.ForeignKey("groups.id"), primary_key=True),
    sa.Column("user_id", ID, sa.ForeignKey("users.id"), primary_key=True, index=True),
)

containers = sa.Table(
    "containers",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("owner_id", ID, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
)

functions = sa.Table(
    "functions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("owner_id", ID, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("code", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("public", sa.Boolean, nullable=False),
    sa.Column("group_id", ID, sa.ForeignKey("groups.id"), index=True),
    sa.Column("container_id", ID, sa.ForeignKey("containers.id")),
    sa.Column("ha_endpoint_id", ID),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False),
)

endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("owner_id", ID, sa.ForeignKey("users.id"), nullable=False, index=True),
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

task_groups = sa.Table(
    "task_groups",
    metadata,
    sa.Column("id", ID, primary_key=True),
    # Not indexed: groups are looked up by id, and the index cost every submission a page.
    sa.Column("owner_id", ID, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    #: Its owner's results also go out on an AMQP queue (``result_outbox``).
    sa.Column("streamed", sa.Boolean, nullable=False, server_default=sa.false()),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("owner_id", ID, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("function_id", ID, sa.ForeignKey("functions.id"), nullable=False),
    sa.Column("endpoint_id", ID, sa.ForeignKey("endpoints.id"), nullable=False),
    sa.Column("task_group_id", ID, sa.ForeignKey("task_groups.id"), nullable=False, index=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("claim_session", sa.String(64)),
    sa.Column("claimed_at", sa.Float),
    sa.Column("result", sa.Text),
    sa.Column("exception", sa.Text),
    sa.Column("exception_data", sa.Text),
    sa.Column("details", sa.JSON),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("completion_t", sa.Float),
)

#: The tasks the queue index holds: a task leaves it when it ends, so the index is as
#: small as the work in hand however many tasks have run, and recording a result
#: deletes one entry instead of moving it across the index. SQLite uses a partial
#: index only for a query that repeats its condition word for word, so the queries
#: on the queue say ``UNFINISHED`` too (``test_no_task_statement_reads_every_task``).
_UNFINISHED_SQL = f"status IN ('{QUEUED}', '{RUNNING}')"
UNFINISHED = sa.text(f"tasks.{_UNFINISHED_SQL}")
sa.Index("ix_tasks_queue", tasks.c.endpoint_id, tasks.c.status, tasks.c.seq,
         sqlite_where=sa.text(_UNFINISHED_SQL), postgresql_where=sa.text(_UNFINISHED_SQL))

#: One owner's tasks newest first: the dashboard's pages of tasks.
sa.Index("ix_tasks_owner", tasks.c.owner_id, tasks.c.seq)

#: Each user's unfinished tasks and stored characters (payloads and results), kept in
#: the transactions that change them: the quotas are checked against these.
usage = sa.Table(
    "usage",
    metadata,
    sa.Column("user_id", ID, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("unfinished_tasks", sa.BigInteger, nullable=False),
    sa.Column("stored_bytes", sa.BigInteger, nullable=False),
)

#: Ended tasks of streamed task groups whose results are not published yet: written in
#: the transaction that ends them, deleted once the broker has confirmed them.
result_outbox = sa.Table(
    "result_outbox",
    metadata,
    sa.Column("task_id", ID, primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

#: Tasks cancelled while an endpoint held them, until the endpoint is told (the
#: ``cancel`` list of a claim's answer): written in the transaction that cancels them.
task_cancels = sa.Table(
    "task_cancels",
    metadata,
    sa.Column("task_id", ID, primary_key=True),
    sa.Column("endpoint_id", ID, nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

#: Blobs in the blob store (``farcall_service.blobs``): their owner and task, so a
#: download can be checked and a sweep can find the blobs whose task is gone.
blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("owner_id", ID, nullable=False),
    sa.Column("task_id", ID, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

oauth_clients = sa.Table(
    "oauth_clients",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("owner_id", ID, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("principal_id", ID, sa.ForeignKey("users.id"), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False),
)

oauth_codes = sa.Table(
    "oauth_codes",
    metadata,
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

#: Device authorization grants (RFC 8628), pending until a user decides; the device
#: code and the user code are kept only as hashes, and expired grants are deleted.
oauth_device_grants = sa.Table(
    "oauth_device_grants",
    metadata,
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
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

oauth_tokens = sa.Table(
    "oauth_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("client_id", ID, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("resource_server", sa.String(255), nullable=False),
    sa.Column("grant_id", ID, nullable=False, index=True),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
