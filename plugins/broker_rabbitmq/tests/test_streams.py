"""The ``rabbitmq`` broker's result streams meet the stream contract on a real RabbitMQ
vhost, with users made through its management API."""

from __future__ import annotations

from pathlib import Path

import pytest
from farcall_service.settings import Settings
from farcall_service.testing.stream_contract import StreamContract


class TestRabbitMQStreams(StreamContract):
    name = "rabbitmq"

    @pytest.fixture
    def settings(self, tmp_path: Path, broker_url: str) -> Settings:
        return Settings(home=tmp_path, broker=broker_url)
