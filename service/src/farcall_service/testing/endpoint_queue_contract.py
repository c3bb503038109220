"""The contract of a broker's endpoint task queues (``Broker.endpoints``,
``farcall_service.brokers.interface.EndpointQueues``), as an endpoint holding only
the ``amqp_creds`` of its registration uses them: it consumes
``task_queue_info["queue"]`` without declaring it, reads messagepack ``task``
messages and their headers, and publishes ``result`` and ``ep_status_report``
messages with ``queue_publish_kwargs``.

Use it from a broker plugin's tests by subclassing and giving the settings::

    from farcall_service.testing.endpoint_queue_contract import EndpointQueueContract

    class TestMyEndpointQueues(EndpointQueueContract):
        name = "my-broker"

        @pytest.fixture
        def settings(self, tmp_path):
            return Settings(home=tmp_path, broker="amqp://...")

A broker whose ``endpoints`` is None skips the suite, saying so. The endpoint side
is aio-pika (the suite skips without it): a client of its own, not the broker's.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from farcall_service.brokers.interface import (
    Broker,
    BrokerError,
    EndpointQueues,
    UserEndpoint,
)
from farcall_service.storage.interface import ClaimedTask, Outcome, TaskOptions
from farcall_service.testing.broker_contract import BrokerFixtures

#: Seconds a message or a refusal may take.
PATIENCE = 10.0


def claimed(function_id: str = "f", **options: Any) -> ClaimedTask:
    return ClaimedTask(str(uuid.uuid4()), function_id, "code\npayload", TaskOptions(**options))


def message(message_type: str, data: dict[str, Any]) -> bytes:
    """A messagepack (protocol v1) message."""
    return b"\x01" + json.dumps({"message_type": message_type, "data": data}).encode()


async def take(creds: dict[str, Any], count: int) -> list[Any]:
    """The next ``count`` messages of the endpoint's task queue, consumed and
    acknowledged with its credentials, as the official endpoint does (no declare)."""
    import aio_pika

    info = creds["task_queue_info"]
    connection = await aio_pika.connect(info["connection_url"], timeout=PATIENCE)
    async with connection:
        channel = await connection.channel()
        source = await channel.get_queue(info["queue"], ensure=False)
        received: list[Any] = []
        async with source.iterator() as messages:
            async for incoming in messages:
                async with incoming.process():
                    received.append(incoming)
                if len(received) == count:
                    break
        return received


async def send(creds: dict[str, Any], which: str, body: bytes, signed: bool = True) -> None:
    """Publish ``body`` as ``creds``'s endpoint does, on ``which`` (``result_queue_info``
    or ``heartbeat_queue_info``); ``signed``: with the properties it was given."""
    import aio_pika

    info = creds[which]
    kwargs = info["queue_publish_kwargs"]
    properties = dict(kwargs.get("properties") or {})
    if not signed:
        properties.pop("user_id", None)
    connection = await aio_pika.connect(info["connection_url"], timeout=PATIENCE)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(kwargs["exchange"], ensure=False)
        await exchange.publish(aio_pika.Message(body, **properties),
                               routing_key=kwargs["routing_key"])


class Inbox:
    """What the handlers given to ``consume`` were called with."""

    def __init__(self) -> None:
        self.results: asyncio.Queue[tuple[str, list[Outcome]]] = asyncio.Queue()
        self.heartbeats: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def on_results(self, endpoint_id: str, outcomes: list[Outcome]) -> None:
        await self.results.put((endpoint_id, outcomes))

    async def on_heartbeat(self, endpoint_id: str, details: dict[str, Any]) -> None:
        await self.heartbeats.put((endpoint_id, details))


class EndpointQueueContract(BrokerFixtures):
    """Subclass, set ``name``; override ``settings`` for the broker's URL."""

    @pytest.fixture(autouse=True)
    def _client(self) -> None:
        pytest.importorskip("aio_pika", reason="the contract plays the endpoint with aio-pika")

    @pytest.fixture
    def make_queues(self, make_broker: Callable[..., Broker]) -> Callable[..., EndpointQueues]:
        """Starts a broker (``settings`` changed by keywords) and gives its endpoint queues."""

        def make(**changes: Any) -> EndpointQueues:
            broker = make_broker(**changes)
            if broker.endpoints is None:
                pytest.skip(f"the {self.name!r} broker has no endpoint queues")
            broker.start()
            return broker.endpoints

        return make

    @pytest.fixture
    def queues(self, make_queues: Callable[..., EndpointQueues]) -> EndpointQueues:
        return make_queues()

    # -- the contract ----------------------------------------------------------------

    def test_forwarded_tasks_reach_the_endpoint_with_their_headers(
        self, queues: EndpointQueues
    ) -> None:
        async def scenario() -> None:
            endpoint_id = str(uuid.uuid4())
            creds = await queues.open(endpoint_id)
            assert creds["endpoint_id"] == endpoint_id
            assert await queues.open(endpoint_id) == creds  # the same every time
            tasks = [claimed(resource_specification={"num_nodes": 2},
                             result_serializers=["globus_compute_sdk.serialize.JSONData"]),
                     claimed()]
            await queues.forward(endpoint_id, tasks)
            received = await asyncio.wait_for(take(creds, 2), PATIENCE)
            for task, incoming in zip(tasks, received, strict=True):
                assert incoming.body[:1] == b"\x01"
                body = json.loads(incoming.body[1:])
                assert body["message_type"] == "task"
                assert body["data"]["task_id"] == task.id
                assert body["data"]["task_buffer"] == task.payload
                assert incoming.headers["task_uuid"] == task.id
                assert incoming.headers["function_uuid"] == task.function_id
                assert (json.loads(str(incoming.headers["resource_specification"]))
                        == task.options.resource_specification)
                assert list(incoming.headers["result_serializers"]) == list(
                    task.options.result_serializers or [])
                assert incoming.delivery_mode == 2  # persistent

        asyncio.run(scenario())

    def test_cancels_reach_the_endpoint_after_its_tasks_as_task_cancel(
        self, queues: EndpointQueues
    ) -> None:
        async def scenario() -> None:
            endpoint_id = str(uuid.uuid4())
            creds = await queues.open(endpoint_id)
            task = claimed()
            await queues.forward(endpoint_id, [task])
            await queues.cancel(endpoint_id, [task.id])
            first, second = await asyncio.wait_for(take(creds, 2), PATIENCE)
            assert json.loads(first.body[1:])["message_type"] == "task"
            assert second.body[:1] == b"\x01"
            assert json.loads(second.body[1:]) == {"message_type": "task_cancel",
                                                   "data": {"task_id": task.id}}
            await queues.cancel(endpoint_id, [])  # nothing to say: nothing sent

        asyncio.run(scenario())

    def test_tasks_for_an_endpoint_without_a_queue_are_not_confirmed(
        self, queues: EndpointQueues
    ) -> None:
        async def scenario() -> None:
            with pytest.raises(BrokerError):  # the claim rolls back: nothing is lost
                await queues.forward(str(uuid.uuid4()), [claimed()])

        asyncio.run(scenario())

    def test_results_and_heartbeats_come_with_their_sender(self, queues: EndpointQueues) -> None:
        async def scenario() -> None:
            inbox = await _consuming(queues)
            endpoint_id = str(uuid.uuid4())
            creds = await queues.open(endpoint_id)
            task_id = str(uuid.uuid4())
            await send(creds, "result_queue_info", message("result", {
                "task_id": task_id, "data": "Traceback ...\nValueError: no", "details": None,
                "error_details": {"code": "RemoteExecutionError", "user_message": "no"},
                "task_statuses": None}))
            sender, outcomes = await asyncio.wait_for(inbox.results.get(), PATIENCE)
            assert sender == endpoint_id
            assert [(o.task_id, o.status, o.exception) for o in outcomes] == [
                (task_id, "failed", "Traceback ...\nValueError: no")]
            await send(creds, "heartbeat_queue_info", message("ep_status_report", {
                "endpoint_id": endpoint_id, "task_statuses": {},
                "ep_status_report": {"total_workers": 4}}))
            sender, details = await asyncio.wait_for(inbox.heartbeats.get(), PATIENCE)
            assert sender == endpoint_id and details["total_workers"] == 4

        asyncio.run(scenario())

    def test_a_message_that_names_no_sender_is_dropped(self, queues: EndpointQueues) -> None:
        async def scenario() -> None:
            inbox = await _consuming(queues)
            creds = await queues.open(str(uuid.uuid4()))
            result = message("result", {"task_id": str(uuid.uuid4()), "data": "x"})
            await send(creds, "result_queue_info", result, signed=False)
            await send(creds, "result_queue_info", b"not messagepack")
            signed = message("result", {"task_id": str(uuid.uuid4()), "data": "y"})
            await send(creds, "result_queue_info", signed)
            _sender, outcomes = await asyncio.wait_for(inbox.results.get(), PATIENCE)
            assert outcomes[0].result == "y"  # the others went, without a call
            assert inbox.results.empty()

        asyncio.run(scenario())

    def test_forgotten_endpoints_cannot_connect(self, queues: EndpointQueues) -> None:
        import aio_pika

        async def scenario() -> None:
            endpoint_id = str(uuid.uuid4())
            creds = await queues.open(endpoint_id)
            url = creds["task_queue_info"]["connection_url"]
            await (await aio_pika.connect(url, timeout=PATIENCE)).close()
            await queues.forget(endpoint_id)
            with pytest.raises(Exception, match="ACCESS_REFUSED"):
                await aio_pika.connect(url, timeout=PATIENCE)

        asyncio.run(scenario())

    # -- core endpoints (the official endpoint 4.x) and their user endpoints ----------

    def test_a_core_endpoint_reads_its_commands_and_nothing_else(
        self, queues: EndpointQueues
    ) -> None:
        import aio_pika

        async def scenario() -> None:
            core_id = str(uuid.uuid4())
            answer = await queues.open_core(core_id)
            assert await queues.open_core(core_id) == answer  # the same every time
            info = answer["command_queue_info"]
            body = {"command": "cmd_start_endpoint", "args": [], "kwargs": {}}
            await queues.command(core_id, body)
            [incoming] = await asyncio.wait_for(take(
                {"task_queue_info": info}, 1), PATIENCE)
            assert json.loads(incoming.body) == body
            assert incoming.content_type == "application/json"
            assert incoming.timestamp is not None
            assert abs(incoming.timestamp.timestamp() - time.time()) < 180
            other = (await queues.open_core(str(uuid.uuid4())))["command_queue_info"]
            connection = await aio_pika.connect(info["connection_url"], timeout=PATIENCE)
            with pytest.raises(Exception, match="ACCESS_REFUSED"):
                async with connection:
                    channel = await connection.channel()
                    queue = await channel.get_queue(other["queue"], ensure=False)
                    await queue.get(timeout=PATIENCE)

        asyncio.run(scenario())

    def test_a_user_endpoint_takes_its_tasks_and_is_heard_as_its_sender(
        self, queues: EndpointQueues
    ) -> None:
        async def scenario() -> None:
            inbox = await _consuming(queues)
            user = UserEndpoint(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()))
            creds = await queues.open_user(user)
            assert creds["endpoint_id"] == user.endpoint_id
            task = claimed()
            await queues.forward(user.endpoint_id, [task])
            [incoming] = await asyncio.wait_for(take(creds, 1), PATIENCE)
            assert incoming.headers["task_uuid"] == task.id
            await send(creds, "result_queue_info", message("result", {
                "task_id": task.id, "data": "Function f not permitted", "details": None,
                "error_details": {"code": "FUNCTION_NOT_ALLOWED", "user_message": "no"},
                "task_statuses": None}))
            sender, outcomes = await asyncio.wait_for(inbox.results.get(), PATIENCE)
            assert sender == user.sender and UserEndpoint.parse(sender) == user
            assert outcomes[0].exception == "FUNCTION_NOT_ALLOWED: Function f not permitted"
            await queues.forget(user.core_id)  # its user endpoints' users go with it
            import aio_pika

            with pytest.raises(Exception, match="ACCESS_REFUSED"):
                await aio_pika.connect(creds["task_queue_info"]["connection_url"],
                                       timeout=PATIENCE)

        asyncio.run(scenario())


async def _consuming(queues: EndpointQueues) -> Inbox:
    """Consume on the running loop (the broker is stopped after the test, before
    anything else arrives for a loop that has closed)."""
    inbox = Inbox()
    await queues.consume(inbox.on_results, inbox.on_heartbeat)
    return inbox

