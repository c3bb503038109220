"""Result streams for the official Executor: a durable queue per task group, results
published to it as messagepack, and credentials that read only their user's queues.

Queues are ``farcall.results.{owner_id}.{task_group_id}``, declared with ``x-expires``
(``settings.stream_queue_expiry``): a group nobody reads any more goes by itself.
Results are persistent messages on the default exchange, with publisher confirms
awaited together; a message for a queue that has expired is dropped (the database
holds the result). Credentials: ``credentials.StreamCredentials``; the RabbitMQ user is
set through the management API by the first ``access`` of each period in a process,
and again by one more than ``RECHECK`` seconds after.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Coroutine, Sequence
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustChannel
from farcall_service.brokers.interface import BrokerError, StreamAccess
from farcall_service.storage.interface import Task

from farcall_broker_rabbitmq.address import BrokerAddress
from farcall_broker_rabbitmq.connection import Connection
from farcall_broker_rabbitmq.credentials import StreamCredentials, stream_username
from farcall_broker_rabbitmq.management import Management
from farcall_broker_rabbitmq.messages import result_message

log = logging.getLogger(__name__)

#: Seconds to wait for the broker's confirmation of a batch.
CONFIRM_TIMEOUT = 30.0
#: Seconds a process trusts that a stream user it set still exists.
RECHECK = 60.0


def queue_prefix(owner_id: str) -> str:
    return f"farcall.results.{owner_id}."


class RabbitMQStreams:
    """``ResultStreams`` over one RabbitMQ vhost."""

    def __init__(self, connection: Connection, address: BrokerAddress,
                 management: Management, credentials: StreamCredentials,
                 queue_expiry: float) -> None:
        self._connection = connection
        self._address = address
        self._management = management
        self._credentials = credentials
        self._expiry_ms = max(1, round(queue_expiry * 1000))
        #: Per owner: the period whose password this process has set, and when.
        self._set: dict[str, tuple[int, float]] = {}
        #: Seconds before a set user is set again: the server may have lost it (a
        #: reset node) or another process removed it, and this process cannot know.
        self.recheck = RECHECK
        self._publisher: AbstractRobustChannel | None = None

    async def prepare(self) -> None:
        """Open the publishing channel (on the I/O loop), so the first results do not
        race to open it."""
        self._publisher = await self._connection.channel(publisher_confirms=True)

    def close(self) -> None:
        self._publisher = None

    # -- queues ----------------------------------------------------------------------

    async def open(self, owner_id: str, task_group_id: str) -> None:
        await self._on_io(self._declare(queue_prefix(owner_id) + task_group_id))

    async def _declare(self, name: str) -> None:
        channel = await self._connection.channel(publisher_confirms=False)
        try:
            await channel.declare_queue(
                name, durable=True, arguments={"x-expires": self._expiry_ms}, robust=False)
        except aiormq.exceptions.ChannelPreconditionFailed:
            # Declared before with another expiry (the setting changed): it exists,
            # which is all a reader needs.
            channel = await self._connection.channel(publisher_confirms=False)
            await channel.declare_queue(name, passive=True, robust=False)
        finally:
            if not channel.is_closed:
                await channel.close()

    # -- results ---------------------------------------------------------------------

    async def publish(self, tasks: Sequence[Task]) -> None:
        if tasks:
            await self._on_io(self._publish(list(tasks)))

    async def _publish(self, tasks: list[Task]) -> None:
        if self._publisher is None or self._publisher.is_closed:
            self._publisher = await self._connection.channel(publisher_confirms=True)
        exchange = self._publisher.default_exchange
        confirmations = await asyncio.gather(*(
            exchange.publish(
                aio_pika.Message(
                    result_message(task),
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    timestamp=round(task.completion_t or time.time())),
                routing_key=queue_prefix(task.owner_id) + task.task_group_id,
                mandatory=False,  # an expired group's queue: dropped, the database has it
                timeout=CONFIRM_TIMEOUT)
            for task in tasks))
        refused = [task.id for task, confirmation in zip(tasks, confirmations, strict=True)
                   if not isinstance(confirmation, aiormq.spec.Basic.Ack)]
        if refused:
            raise BrokerError(f"RabbitMQ did not confirm the results of {len(refused)} "
                              f"task(s), e.g. {refused[0]}")

    # -- credentials -----------------------------------------------------------------

    async def access(self, owner_id: str) -> StreamAccess:
        username = stream_username(owner_id, self._address.user_prefix)
        period = self._credentials.period()
        password = self._credentials.password(username, period)
        known = self._set.get(owner_id)
        if known is None or known[0] != period or time.monotonic() - known[1] > self.recheck:
            read = f"^{re.escape(queue_prefix(owner_id))}"
            await self._management.set_user(username, password, read)
            self._set[owner_id] = (period, time.monotonic())
        return StreamAccess(self._address.url(username, password), queue_prefix(owner_id))

    async def forget(self, owner_id: str) -> None:
        self._set.pop(owner_id, None)
        await self._management.delete_user(stream_username(owner_id, self._address.user_prefix))
        for name in await self._management.queues(queue_prefix(owner_id)):
            await self._management.delete_queue(name)

    # -- plumbing --------------------------------------------------------------------

    async def _on_io(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run an AMQP coroutine on the connection's loop; raise BrokerError when the
        broker cannot be reached (or this one is stopped)."""
        try:
            await self._connection.io.run(coro)
        except BrokerError:
            raise
        except Exception as exc:
            raise BrokerError(f"RabbitMQ at {self._address.where}: "
                              f"{type(exc).__name__}: {exc}") from None
