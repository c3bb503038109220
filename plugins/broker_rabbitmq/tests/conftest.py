"""A scratch RabbitMQ vhost per test, deleted after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from farcall_testkit.servers import RabbitMQ


@pytest.fixture
def broker_url(rabbitmq: RabbitMQ) -> Iterator[str]:
    url = rabbitmq.create_vhost()
    yield url
    rabbitmq.delete_vhost(url)
