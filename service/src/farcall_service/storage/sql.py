"""The :class:`~farcall_service.storage.interface.Store` on SQLAlchemy Core, for SQLite
and PostgreSQL.

Each job of the store is its own module, and each is a store of its own:
:mod:`sql_identity`, :mod:`sql_oauth`, :mod:`sql_catalogue`, :mod:`sql_tasks`,
:mod:`sql_browse`, :mod:`sql_retention` and :mod:`sql_blobs`, on
the engine and transactions of :mod:`sql_engine`. :class:`SqlStore` is all of them.
"""

from __future__ import annotations

from farcall_service.storage.sql_blobs import BlobIndexSql
from farcall_service.storage.sql_browse import BrowseSql
from farcall_service.storage.sql_catalogue import CatalogueSql
from farcall_service.storage.sql_engine import create_engine
from farcall_service.storage.sql_identity import IdentitySql
from farcall_service.storage.sql_oauth import OAuthSql
from farcall_service.storage.sql_retention import RetentionSql
from farcall_service.storage.sql_tasks import TaskSql

__all__ = ["SqlStore", "create_engine", "open_sql_store"]


class SqlStore(IdentitySql, OAuthSql, CatalogueSql, TaskSql, BrowseSql, RetentionSql,
               BlobIndexSql):
    """Every operation is one transaction; it has committed when the method returns."""


def open_sql_store(url: str, *, migrate: bool = True) -> SqlStore:
    """The SQL store at ``url``, migrated to the current schema unless told not to."""
    store = SqlStore(url)
    if migrate:
        from farcall_service.storage.migrate import upgrade  # alembic: only when migrating

        try:
            upgrade(store.engine)
        except BaseException:
            store.close()
            raise
    return store
