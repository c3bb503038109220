"""The ``rabbitmq`` broker meets the broker contract on a real RabbitMQ vhost."""

from __future__ import annotations

from pathlib import Path

import pytest
from farcall_service.settings import Settings
from farcall_service.testing.broker_contract import BrokerContract


class TestRabbitMQBroker(BrokerContract):
    name = "rabbitmq"

    @pytest.fixture
    def settings(self, tmp_path: Path, broker_url: str) -> Settings:
        """A scratch vhost; SQLite is enough, the broker never touches the database."""
        return Settings(home=tmp_path, broker=broker_url)
