"""The ``rabbitmq`` broker's result streams meet the stream contract on a real RabbitMQ
vhost, with users made through its management API."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aio_pika
import pytest
from farcall_broker_rabbitmq.broker import RabbitMQBroker
from farcall_service.settings import Settings
from farcall_service.testing.stream_contract import (
    PATIENCE,
    StreamContract,
    ended,
    unpack_result,
)
from farcall_testkit.servers import RabbitMQ


class TestRabbitMQStreams(StreamContract):
    name = "rabbitmq"

    @pytest.fixture
    def settings(self, tmp_path: Path, broker_url: str) -> Settings:
        return Settings(home=tmp_path, broker=broker_url)


# -- what the rabbitmq broker adds to the contract -------------------------------------

@pytest.fixture
def make_broker(tmp_path: Path, broker_url: str) -> Iterator[Callable[..., RabbitMQBroker]]:
    built: list[RabbitMQBroker] = []

    def make(**changes: Any) -> RabbitMQBroker:
        broker = RabbitMQBroker(Settings(home=tmp_path, broker=broker_url, **changes))
        built.append(broker)
        broker.start()
        return broker

    yield make
    for broker in built:
        broker.stop()


async def _connects(url: str) -> bool:
    try:
        connection = await aio_pika.connect(url, timeout=PATIENCE)
    except Exception as exc:
        assert "ACCESS_REFUSED" in str(exc), exc
        return False
    await connection.close()
    return True


def test_every_process_hands_out_the_same_credentials_with_least_privilege(
    make_broker: Callable[..., RabbitMQBroker], rabbitmq: RabbitMQ,
) -> None:
    first, second = make_broker(), make_broker()
    owner = str(uuid.uuid4())

    async def scenario() -> None:
        assert await first.streams.access(owner) == await second.streams.access(owner)

    asyncio.run(scenario())
    name = f"{rabbitmq.prefix}_farcall-user-{owner}"
    user = rabbitmq._request("GET", f"/api/users/{quote(name, safe='')}")
    assert isinstance(user, dict) and user["tags"] in ("", [])  # no management access
    permissions = rabbitmq._request(
        "GET", f"/api/users/{quote(name, safe='')}/permissions")
    assert isinstance(permissions, list)
    assert [(p["configure"], p["write"], p["read"]) for p in permissions] == [
        ("^$", "^$", rf"^farcall\.results\.{re.escape(owner)}\.")]


def test_a_stream_user_lost_by_the_server_is_set_again(
    make_broker: Callable[..., RabbitMQBroker], rabbitmq: RabbitMQ,
) -> None:
    broker = make_broker()
    owner = str(uuid.uuid4())

    async def scenario() -> None:
        url = (await broker.streams.access(owner)).connection_url
        rabbitmq._request("DELETE", f"/api/users/{rabbitmq.prefix}_farcall-user-{owner}")
        assert not await _connects(url)
        broker.streams.recheck = 0.0  # as a minute later
        assert (await broker.streams.access(owner)).connection_url == url
        assert await _connects(url)

    asyncio.run(scenario())


def test_credentials_rotate_and_connections_made_before_keep_reading(
    make_broker: Callable[..., RabbitMQBroker],
) -> None:
    ttl = 2.0
    broker = make_broker(stream_credential_ttl=ttl)
    owner, group = str(uuid.uuid4()), str(uuid.uuid4())

    async def scenario() -> None:
        await broker.streams.open(owner, group)
        # Start early in a period, so the connection below is made within it.
        await asyncio.sleep(ttl - time.time() % ttl + 0.05)
        old = await broker.streams.access(owner)
        connection = await aio_pika.connect(old.connection_url, timeout=PATIENCE)
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(old.queue_prefix + group, ensure=False)
            await asyncio.sleep(ttl - time.time() % ttl + 0.05)  # the next period
            new = await broker.streams.access(owner)
            assert new.connection_url != old.connection_url
            assert new.queue_prefix == old.queue_prefix
            assert await _connects(new.connection_url)
            assert not await _connects(old.connection_url)
            task = ended(owner, group)
            await broker.streams.publish([task])
            async with queue.iterator() as messages:  # the old connection still reads
                async for message in messages:
                    async with message.process():
                        assert unpack_result(message.body)["task_id"] == task.id
                    break

    asyncio.run(scenario())
