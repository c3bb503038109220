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


def test_the_broker_is_chosen_by_name_or_by_an_amqp_url(tmp_path: Path) -> None:
    from farcall.plugins import get_plugin_manager
    from farcall_broker_rabbitmq.broker import RabbitMQBroker
    from farcall_service.app import select_broker
    from farcall_service.storage import open_store

    pm = get_plugin_manager()
    store = open_store(Settings(home=tmp_path).database_url)
    try:
        for broker, where, vhost in [
            ("rabbitmq", "127.0.0.1:5672", "/"),
            ("amqp://u:p@rabbit.example:5673/farcall", "rabbit.example:5673", "farcall"),
            ("AMQPS://u:p@rabbit.example/%2Ffar", "rabbit.example:5671", "/far"),
        ]:
            chosen = select_broker(pm, Settings(home=tmp_path, broker=broker), store)
            assert isinstance(chosen, RabbitMQBroker) and not chosen.single_process
            assert (chosen.address.where, chosen.address.vhost) == (where, vhost)
            assert chosen.streams is not None
            chosen.stop()  # never started: nothing to release
    finally:
        store.close()
