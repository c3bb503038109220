"""The ``local`` broker meets the broker contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from farcall_service.settings import Settings
from farcall_service.testing.broker_contract import BrokerContract


class TestLocalBroker(BrokerContract):
    name = "local"


class TestLocalBrokerOnPostgreSQL(BrokerContract):
    name = "local"

    @pytest.fixture
    def settings(self, tmp_path: Path, pg_url: str) -> Settings:
        return Settings(home=tmp_path, db_url=pg_url, broker=self.name)
