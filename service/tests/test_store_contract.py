"""The SQL store meets the store contract, on SQLite and on PostgreSQL.

Each test gets a new database: a SQLite file of its own, or a PostgreSQL database
copied from one migrated at the start of the run, dropped after the test. Without a
reachable PostgreSQL server its half skips (fails with FARCALL_REQUIRE_SERVERS=1).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from farcall_service.storage import Store, open_store
from farcall_service.storage.sql import SqlStore
from farcall_service.testing.store_contract import StoreContract


class TestSqlStoreOnSQLite(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = open_store(f"sqlite:///{tmp_path / 'farcall.db'}")
        assert isinstance(store, SqlStore)
        yield store
        store.close()


class TestSqlStoreOnPostgreSQL(StoreContract):
    @pytest.fixture
    def store(self, postgresql_url: str) -> Iterator[Store]:
        store = open_store(postgresql_url)
        assert isinstance(store, SqlStore)
        yield store
        store.close()
