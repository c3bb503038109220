"""Endpoint task queues (``EndpointQueues``): tasks to endpoints over AMQP, results and
heartbeats back, laid out as the official endpoint 4.19 reads them.

- ``farcall.tasks.{endpoint_id}``: a durable queue per endpoint; tasks are persistent
  messagepack ``task`` messages on the default exchange, with the headers the
  endpoint reads (``function_uuid``, ``task_uuid``, ``resource_specification`` as a
  JSON string, ``result_serializers``), publisher confirms awaited together.
- ``farcall.endpoint.results`` and ``farcall.endpoint.heartbeats``: a direct exchange
  each, bound to a durable queue of the same name that every service process
  consumes (competing consumers), acking a message after its handler returned.
- A RabbitMQ user per endpoint, ``farcall-endpoint-{endpoint_id}``, with a password
  derived like the stream users' (``credentials``) but of one fixed period: the
  endpoint keeps what its registration gave it, and every process computes the
  same. It may read its task queue only, write the two exchanges only, and
  configure nothing. Its ``queue_publish_kwargs`` set the ``user_id`` property,
  which RabbitMQ checks against the connection's user: the service learns from it,
  not from the body, which endpoint sent a message, and drops one without it.
- A core endpoint (the official endpoint 4.x) gets ``farcall.commands.{endpoint_id}``,
  a durable queue its user may only read, and may write heartbeats only. Each user
  endpoint it starts is ``farcall-endpoint-{core}.{owner}.{id}`` (its
  ``UserEndpoint.sender``): its own task queue, results and heartbeats as above, so
  the service knows for whom and for which core it speaks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel
from farcall_service.brokers.interface import (
    BrokerError,
    HeartbeatHandler,
    ResultsHandler,
    UserEndpoint,
)
from farcall_service.storage.interface import ClaimedTask, Outcome

from farcall_broker_rabbitmq.address import BrokerAddress
from farcall_broker_rabbitmq.connection import Connection
from farcall_broker_rabbitmq.credentials import StreamCredentials
from farcall_broker_rabbitmq.management import Management
from farcall_broker_rabbitmq.messages import VERSION, cancel_message

log = logging.getLogger(__name__)

RESULTS = "farcall.endpoint.results"
HEARTBEATS = "farcall.endpoint.heartbeats"
#: Seconds to wait for the broker's confirmation of a batch of tasks.
CONFIRM_TIMEOUT = 30.0
#: The credential period of endpoint users: fixed, so a registration's credentials last.
PERIOD = 0
#: Messages each process takes from the results queue before acking.
PREFETCH = 200


def task_queue(endpoint_id: str) -> str:
    return f"farcall.tasks.{endpoint_id}"


def command_queue(endpoint_id: str) -> str:
    return f"farcall.commands.{endpoint_id}"


def endpoint_username(endpoint_id: str, prefix: str = "") -> str:
    return f"{prefix}farcall-endpoint-{endpoint_id}"


def task_message(task: ClaimedTask) -> aio_pika.Message:
    """A messagepack (v1) ``task`` message with the headers the endpoint reads."""
    body = {"message_type": "task", "data": {
        "task_id": task.id, "container_id": None, "container": None,
        "task_buffer": task.payload}}
    options = task.options
    return aio_pika.Message(
        VERSION + json.dumps(body, separators=(",", ":")).encode(),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers={
            "function_uuid": task.function_id,
            "task_uuid": task.id,
            "resource_specification": json.dumps(options.resource_specification),
            "result_serializers": list(options.result_serializers or []),
        })


def decode(body: bytes) -> tuple[str, dict[str, Any]]:
    """A messagepack v1 message's type and data; ValueError when it is not one."""
    if not body.startswith(VERSION):
        raise ValueError("not a messagepack v1 message")
    message = json.loads(body[len(VERSION):])
    if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
        raise ValueError("no message data")
    return str(message.get("message_type")), message["data"]


def outcome(data: dict[str, Any]) -> Outcome:
    """A ``result`` message's data as the outcome the service records."""
    task_id = str(data["task_id"])
    text = data.get("data")
    details = data.get("details") if isinstance(data.get("details"), dict) else None
    error = data.get("error_details")
    if error:
        return Outcome(task_id, "failed", None, failure_text(error, text), details)
    return Outcome(task_id, "success", None if text is None else str(text), None, details)


def failure_text(error: Any, text: Any) -> str:
    """A failure as the service keeps it: the endpoint's text (a traceback, for a
    function that raised), after its error code unless that is the plain
    ``RemoteExecutionError`` or already in it (``FUNCTION_NOT_ALLOWED``,
    ``MaxResultSizeExceeded``, ... say what happened where a traceback does not)."""
    text = str(text or "")
    code = str(error.get("code") or "") if isinstance(error, dict) else ""
    if not code or code == "RemoteExecutionError" or code in text:
        return text
    message = str(error.get("user_message") or "")
    return f"{code}: {text or message}"


class RabbitMQEndpointQueues:
    """``EndpointQueues`` over one RabbitMQ vhost."""

    def __init__(self, connection: Connection, address: BrokerAddress,
                 management: Management, credentials: StreamCredentials) -> None:
        self._connection = connection
        self._address = address
        self._management = management
        self._credentials = credentials
        self._publisher: AbstractRobustChannel | None = None
        self._prefix = f"{address.user_prefix}farcall-endpoint-"

    async def prepare(self) -> None:
        """Declare the results and heartbeat exchanges and queues (on the I/O loop)."""
        channel = await self._connection.channel(publisher_confirms=False)
        for name in (RESULTS, HEARTBEATS):
            exchange = await channel.declare_exchange(
                name, aio_pika.ExchangeType.DIRECT, durable=True)
            queue = await channel.declare_queue(name, durable=True)
            await queue.bind(exchange, routing_key=name)
        self._publisher = await self._connection.channel(publisher_confirms=True)

    def close(self) -> None:
        self._publisher = None

    # -- endpoints -------------------------------------------------------------------

    def _creds(self, endpoint_id: str) -> tuple[str, str]:
        username = endpoint_username(endpoint_id, self._address.user_prefix)
        return username, self._credentials.password(username, PERIOD)

    async def open(self, endpoint_id: str) -> dict[str, Any]:
        return await self._open(endpoint_id, endpoint_id)

    async def open_user(self, endpoint: UserEndpoint) -> dict[str, Any]:
        return await self._open(endpoint.endpoint_id, endpoint.sender)

    async def _open(self, endpoint_id: str, sender: str) -> dict[str, Any]:
        await self._connection.run(self._declare(task_queue(endpoint_id)))
        username, password = self._creds(sender)
        await self._management.set_permissions(
            username, password,
            configure="^$",
            write=f"^({re.escape(RESULTS)}|{re.escape(HEARTBEATS)})$",
            read=f"^{re.escape(task_queue(endpoint_id))}$")
        url = self._address.url(username, password)
        return {
            "endpoint_id": endpoint_id,
            "task_queue_info": {"connection_url": url, "queue": task_queue(endpoint_id)},
            "result_queue_info": _publishing(url, username, RESULTS),
            "heartbeat_queue_info": _publishing(url, username, HEARTBEATS),
        }

    async def open_core(self, endpoint_id: str) -> dict[str, Any]:
        await self._connection.run(self._declare(command_queue(endpoint_id)))
        username, password = self._creds(endpoint_id)
        await self._management.set_permissions(
            username, password, configure="^$", write=f"^{re.escape(HEARTBEATS)}$",
            read=f"^{re.escape(command_queue(endpoint_id))}$")
        url = self._address.url(username, password)
        return {
            "command_queue_info": {"connection_url": url, "queue": command_queue(endpoint_id)},
            "heartbeat_queue_info": _publishing(url, username, HEARTBEATS),
        }

    async def command(self, core_id: str, body: dict[str, Any]) -> None:
        await self._connection.run(self._command(core_id, body))

    async def _command(self, core_id: str, body: dict[str, Any]) -> None:
        if self._publisher is None or self._publisher.is_closed:
            self._publisher = await self._connection.channel(publisher_confirms=True)
        message = aio_pika.Message(
            json.dumps(body, separators=(",", ":")).encode(),
            content_type="application/json", timestamp=time.time(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        confirmation = await self._publisher.default_exchange.publish(
            message, routing_key=command_queue(core_id), mandatory=True,
            timeout=CONFIRM_TIMEOUT)
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise BrokerError(f"RabbitMQ did not confirm a command for endpoint {core_id} "
                              f"(is its command queue gone?)")

    async def _declare(self, name: str) -> None:
        channel = await self._connection.channel(publisher_confirms=False)
        try:
            await channel.declare_queue(name, durable=True, robust=False)
        finally:
            await channel.close()

    async def forget(self, endpoint_id: str) -> None:
        username, _ = self._creds(endpoint_id)
        await self._management.delete_user(username)
        await self._management.delete_queue(task_queue(endpoint_id))
        await self._management.delete_queue(command_queue(endpoint_id))
        for user in await self._management.users(f"{username}."):  # its user endpoints
            await self._management.delete_user(user)
            await self._management.delete_queue(task_queue(user.rsplit(".", 1)[-1]))

    # -- tasks -----------------------------------------------------------------------

    async def forward(self, endpoint_id: str, tasks: Sequence[ClaimedTask]) -> None:
        if tasks:
            await self._connection.run(self._forward(endpoint_id, list(tasks)))

    async def _forward(self, endpoint_id: str, tasks: list[ClaimedTask]) -> None:
        if self._publisher is None or self._publisher.is_closed:
            self._publisher = await self._connection.channel(publisher_confirms=True)
        exchange = self._publisher.default_exchange
        confirmations = await asyncio.gather(*(
            exchange.publish(task_message(task), routing_key=task_queue(endpoint_id),
                             mandatory=True, timeout=CONFIRM_TIMEOUT)
            for task in tasks), return_exceptions=True)
        refused = [task.id for task, confirmation in zip(tasks, confirmations, strict=True)
                   if not isinstance(confirmation, aiormq.spec.Basic.Ack)]
        if refused:
            raise BrokerError(f"RabbitMQ did not confirm {len(refused)} task(s) for endpoint "
                              f"{endpoint_id}, e.g. {refused[0]} (is its queue gone?)")

    async def cancel(self, endpoint_id: str, task_ids: Sequence[str]) -> None:
        if task_ids:
            await self._connection.run(self._cancel(endpoint_id, list(task_ids)))

    async def _cancel(self, endpoint_id: str, task_ids: list[str]) -> None:
        if self._publisher is None or self._publisher.is_closed:
            self._publisher = await self._connection.channel(publisher_confirms=True)
        exchange = self._publisher.default_exchange
        # ``task_uuid`` as on a task: an endpoint that took it for one answers with a
        # failure for that task, which the service keeps as the cancelled task's late
        # report (acknowledged, not recorded).
        await asyncio.gather(*(
            exchange.publish(aio_pika.Message(cancel_message(task_id),
                                              delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                              headers={"task_uuid": task_id}),
                             routing_key=task_queue(endpoint_id), timeout=CONFIRM_TIMEOUT)
            for task_id in task_ids), return_exceptions=True)

    # -- results and heartbeats ----------------------------------------------------

    async def consume(self, results: ResultsHandler, heartbeats: HeartbeatHandler) -> None:
        loop = asyncio.get_running_loop()
        await self._connection.run(self._consume(loop, results, heartbeats))

    async def _consume(self, loop: asyncio.AbstractEventLoop, results: ResultsHandler,
                       heartbeats: HeartbeatHandler) -> None:
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=PREFETCH)

        async def on_result(message: AbstractIncomingMessage) -> None:
            await self._handle(message, loop, "result", lambda eid, data: results(
                eid, [outcome(data)]))

        async def on_heartbeat(message: AbstractIncomingMessage) -> None:
            await self._handle(message, loop, "ep_status_report", lambda eid, data: heartbeats(
                eid, dict(data.get("ep_status_report") or data.get("global_state") or {})))

        await (await channel.declare_queue(RESULTS, durable=True)).consume(on_result)
        await (await channel.declare_queue(HEARTBEATS, durable=True)).consume(on_heartbeat)

    async def _handle(self, message: AbstractIncomingMessage, loop: asyncio.AbstractEventLoop,
                      expected: str, handler: Any) -> None:
        """Check the sender and the message, run ``handler`` on the service's loop, ack
        after it returned; a message from nobody or unreadable is acked and dropped."""
        sender = message.user_id or ""
        try:
            if not sender.startswith(self._prefix):
                raise ValueError(f"no endpoint's user_id ({sender!r})")
            endpoint_id = sender[len(self._prefix):]
            kind, data = decode(message.body)
            if kind != expected:
                raise ValueError(f"a {kind!r} message where {expected!r} goes")
            work = handler(endpoint_id, data)
        except Exception as exc:
            task_id = _task_id(message.body)
            log.warning("dropped a message from the endpoint results or heartbeats queue "
                        "(task %s): %s: %s", task_id, type(exc).__name__, exc)
            _start_failure(message.body)
            await message.ack()
            return
        try:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, loop))
        except Exception as exc:
            log.warning("a message from endpoint %s goes back to its queue: %s: %s",
                        endpoint_id, type(exc).__name__, exc)
            await message.nack(requeue=True)
            return
        await message.ack()




def _publishing(url: str, username: str, exchange: str) -> dict[str, Any]:
    """Where and how an endpoint publishes to ``exchange``: ``user_id`` set, so the
    broker vouches for the sender."""
    return {"connection_url": url, "exchange": exchange, "queue": exchange,
            "queue_publish_kwargs": {
                "exchange": exchange, "routing_key": exchange, "mandatory": True,
                "properties": {"delivery_mode": 2, "user_id": username}}}


def _start_failure(body: bytes) -> None:
    """Log the error of a start failure: the official endpoint reports that a user
    endpoint did not start with a heartbeat it publishes without ``user_id``, so the
    service cannot tell who sent it and acts on nothing, but its admin should see it."""
    try:
        kind, data = decode(body)
        error = (data.get("global_state") or data.get("ep_status_report") or {}).get("error")
    except Exception:
        return
    if kind == "ep_status_report" and error:
        log.warning("a heartbeat that names no sender says endpoint %s did not start: %s",
                    data.get("endpoint_id"), str(error)[:2000])


def _task_id(body: bytes) -> str:
    """The task id a message names, for a warning; '?' when it names none."""
    try:
        return str(decode(body)[1].get("task_id", "?"))
    except Exception:
        return "?"
