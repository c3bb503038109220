"""alembic environment: migrations always run on a connection the service hands in."""

from __future__ import annotations

from alembic import context
from farcall_service.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("farcall migrations run through farcall_service.storage.migrate")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
