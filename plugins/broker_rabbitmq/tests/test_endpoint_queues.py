"""Endpoints that take their tasks over AMQP, against two ``farcall server start``
processes on one PostgreSQL database and one RabbitMQ vhost.

The "endpoints" here are written in the test with aio-pika and hold nothing but the
``amqp_creds`` their registration answered: they consume their queue, answer each
task with ``echo:{task_id}`` and publish it as the official endpoint does (the
``queue_publish_kwargs`` they were given).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import requests
from aio_pika.abc import AbstractIncomingMessage
from farcall_service.settings import Settings
from farcall_service.testing.endpoint_queue_contract import EndpointQueueContract
from farcall_service.testing.stream_contract import consume, unpack_result
from farcall_testkit.servers import PostgreSQL
from farcall_testkit.service import SOURCE, ServiceProcess, admin, payload

#: Seconds anything here may take.
PATIENCE = 60.0
VERSION = b"\x01"
#: The services' ``max_body_bytes``: a result over it is a failure, not stored.
MAX_BODY = 200_000


@pytest.fixture
def stack(tmp_path: Path, postgresql: PostgreSQL,
          broker_url: str) -> Iterator[tuple[ServiceProcess, ServiceProcess, str, str]]:
    database = postgresql.create_database()
    env = {"FARCALL_SERVICE_DB_URL": database, "FARCALL_SERVICE_BROKER": broker_url,
           "FARCALL_SERVICE_MAX_BODY_BYTES": str(MAX_BODY)}
    admin(tmp_path, "user", "add", "alice", env=env)
    token = admin(tmp_path, "token", "create", "alice", env=env).splitlines()[-1].strip()
    with ServiceProcess(tmp_path, env=env) as first, ServiceProcess(tmp_path, env=env) as second:
        yield first, second, token, broker_url
    postgresql.drop_database(database)


def _call(method: str, service: ServiceProcess, token: str, path: str,
          body: dict[str, Any] | None = None) -> Any:
    answer = requests.request(method, service.url + path, json=body, timeout=PATIENCE,
                              headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _register(service: ServiceProcess, token: str, name: str) -> dict[str, Any]:
    answer = _call("POST", service, token, "/v3/endpoints",
                   {"endpoint_name": name, "amqp_tasks": True})
    creds: dict[str, Any] = answer["amqp_creds"]
    assert creds["endpoint_id"] == answer["endpoint_id"]
    return creds


def _function(service: ServiceProcess, token: str) -> str:
    return str(_call("POST", service, token, "/v3/functions", {
        "function_name": "square", "function_code": SOURCE, "serialized": False,
    })["function_uuid"])


def _submit(service: ServiceProcess, token: str, endpoint_id: str, function_id: str,
            count: int) -> list[str]:
    answer = _call("POST", service, token, f"/v3/endpoints/{endpoint_id}/submit",
                   {"tasks": {function_id: [payload(n) for n in range(count)]}})
    return list(answer["tasks"][function_id])


def _results(service: ServiceProcess, token: str, task_ids: list[str],
             patience: float = PATIENCE) -> dict[str, Any]:
    """The ended tasks among ``task_ids``, waiting until all have or ``patience`` ends."""
    ended: dict[str, Any] = {}
    deadline = time.monotonic() + patience
    while len(ended) < len(task_ids) and time.monotonic() < deadline:
        left = [t for t in task_ids if t not in ended]
        answer = _call("POST", service, token, "/farcall/v1/tasks/wait",
                       {"task_ids": left[:500], "timeout": 2})
        ended.update(answer["results"])
    return ended


def result_body(task_id: str, data: str) -> bytes:
    body = {"message_type": "result", "data": {
        "task_id": task_id, "data": data, "details": None, "error_details": None,
        "task_statuses": None}}
    return VERSION + json.dumps(body).encode()


async def publish_result(creds: dict[str, Any], task_id: str, data: str,
                         signed: bool = True) -> None:
    """Publish one result with ``creds`` as the official endpoint does (``signed``:
    with the ``user_id`` property its ``queue_publish_kwargs`` set)."""
    info = creds["result_queue_info"]
    kwargs = info["queue_publish_kwargs"]
    connection = await aio_pika.connect(info["connection_url"], timeout=PATIENCE)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(kwargs["exchange"], ensure=False)
        properties = kwargs["properties"]
        await exchange.publish(
            aio_pika.Message(result_body(task_id, data),
                             delivery_mode=properties["delivery_mode"],
                             user_id=properties["user_id"] if signed else None),
            routing_key=kwargs["routing_key"])


class EchoEndpoint:
    """An endpoint on its own thread and event loop: consumes its queue with the
    registration's credentials, answers each task ``echo:{task_id}``."""

    def __init__(self, creds: dict[str, Any], answers: int = 1) -> None:
        self.creds = creds
        #: Results published per task (more than one: the service must keep the first).
        self.answers = answers
        #: Task ids as they arrived, with the headers of the first.
        self.received: list[str] = []
        self.headers: dict[str, Any] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._connection: aio_pika.abc.AbstractConnection | None = None

    def __enter__(self) -> EchoEndpoint:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(PATIENCE)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(PATIENCE)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(PATIENCE)

    async def _start(self) -> None:
        tasks = self.creds["task_queue_info"]
        self._connection = await aio_pika.connect(tasks["connection_url"], timeout=PATIENCE)
        channel = await self._connection.channel(publisher_confirms=True)
        kwargs = self.creds["result_queue_info"]["queue_publish_kwargs"]
        results = await channel.get_exchange(kwargs["exchange"], ensure=False)
        queue = await channel.get_queue(tasks["queue"], ensure=False)

        async def run(message: AbstractIncomingMessage) -> None:
            assert message.body.startswith(VERSION)
            task = json.loads(message.body[1:])
            assert task["message_type"] == "task"
            task_id = task["data"]["task_id"]
            self.received.append(task_id)
            self.headers.setdefault(task_id, dict(message.headers))
            for n in range(self.answers):
                data = f"echo:{task_id}" if n == 0 else f"again:{task_id}"
                await results.publish(
                    aio_pika.Message(result_body(task_id, data), delivery_mode=2,
                                     user_id=kwargs["properties"]["user_id"]),
                    routing_key=kwargs["routing_key"])
            await message.ack()

        await queue.consume(run, exclusive=True)

    async def _stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()


def test_tasks_submitted_to_either_process_reach_the_endpoint_over_amqp_and_end_once(
    stack: tuple[ServiceProcess, ServiceProcess, str, str],
) -> None:
    first, second, token, _ = stack
    creds = _register(first, token, "amqp-ep")
    endpoint_id = creds["endpoint_id"]
    function_id = _function(first, token)
    with EchoEndpoint(creds, answers=2) as endpoint:
        task_ids = (_submit(first, token, endpoint_id, function_id, 30)
                    + _submit(second, token, endpoint_id, function_id, 30))
        ended = _results(second, token, task_ids)
    assert sorted(ended) == sorted(task_ids)
    # Two processes consume the results queue: either report may come first; the
    # other is refused, and so is one that comes long after.
    assert all(ended[t]["result"] in {f"echo:{t}", f"again:{t}"} for t in task_ids)
    assert sorted(endpoint.received) == sorted(task_ids)  # each published once
    asyncio.run(publish_result(creds, task_ids[0], "late"))
    time.sleep(2.0)
    task = _call("GET", first, token, f"/v2/tasks/{task_ids[0]}")
    assert task["result"] == ended[task_ids[0]]["result"], task
    headers = endpoint.headers[task_ids[0]]
    assert headers["function_uuid"] == function_id and headers["task_uuid"] == task_ids[0]
    assert headers["resource_specification"] == "null"


def test_results_of_an_amqp_endpoint_reach_a_streamed_group_s_queue(
    stack: tuple[ServiceProcess, ServiceProcess, str, str],
) -> None:
    first, second, token, _ = stack
    creds = _register(first, token, "amqp-ep")
    function_id = _function(first, token)
    submitted = _call("POST", second, token, f"/v3/endpoints/{creds['endpoint_id']}/submit", {
        "tasks": {function_id: [payload(n) for n in range(5)]}, "create_queue": True})
    task_ids = submitted["tasks"][function_id]
    access = _call("GET", first, token, "/v2/get_amqp_result_connection_url")
    with EchoEndpoint(creds):
        received = asyncio.run(asyncio.wait_for(consume(
            access["connection_url"], access["queue_prefix"] + submitted["task_group_id"],
            len(task_ids)), PATIENCE))
    results = {m["task_id"]: m["data"] for m in (unpack_result(r.body) for r in received)}
    assert results == {t: f"echo:{t}" for t in task_ids}


async def _queued_messages(creds: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """The next ``count`` messages of the endpoint's task queue, decoded, read with its
    own credentials (and acknowledged)."""
    tasks = creds["task_queue_info"]
    connection = await aio_pika.connect(tasks["connection_url"], timeout=PATIENCE)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(tasks["queue"], ensure=False)
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + PATIENCE
        while len(got) < count:
            assert time.monotonic() < deadline, f"{len(got)} of {count} messages came"
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            assert message.body.startswith(VERSION)
            got.append({**json.loads(message.body[1:]), "headers": dict(message.headers)})
            await message.ack()
        return got
    finally:
        await connection.close()


def test_a_task_delivered_to_an_amqp_endpoint_and_then_cancelled_is_sent_task_cancel(
    stack: tuple[ServiceProcess, ServiceProcess, str, str],
) -> None:
    first, second, token, _ = stack
    creds = _register(first, token, "amqp-ep")
    (task_id,) = _submit(first, token, creds["endpoint_id"], _function(first, token), 1)
    deadline = time.monotonic() + PATIENCE
    while _call("GET", first, token, f"/v2/tasks/{task_id}")["status"] != "running":
        assert time.monotonic() < deadline, "the task was never forwarded"
        time.sleep(0.05)
    answer = _call("POST", second, token, "/farcall/v1/tasks/cancel",
                   {"task_ids": [task_id]})["results"][task_id]
    assert answer["outcome"] == "cancelled"
    assert "task_cancel" in answer["message"] and "4.19" in answer["message"]
    task, cancel = asyncio.run(_queued_messages(creds, 2))
    assert (task["message_type"], task["data"]["task_id"]) == ("task", task_id)
    assert cancel["message_type"] == "task_cancel" and cancel["data"] == {"task_id": task_id}
    assert cancel["headers"]["task_uuid"] == task_id
    assert _results(first, token, [task_id])[task_id]["status"] == "cancelled"


def test_a_result_another_endpoint_forges_or_nobody_signs_is_not_recorded(
    stack: tuple[ServiceProcess, ServiceProcess, str, str],
) -> None:
    first, second, token, _ = stack
    creds_a = _register(first, token, "a")
    creds_b = _register(second, token, "b")
    function_id = _function(first, token)
    [task_id] = _submit(first, token, creds_a["endpoint_id"], function_id, 1)

    asyncio.run(publish_result(creds_b, task_id, "forged"))
    asyncio.run(publish_result(creds_a, task_id, "unsigned", signed=False))
    time.sleep(2.0)  # well past the time a result takes to be recorded
    assert _results(first, token, [task_id], patience=1.0) == {}
    task = _call("GET", second, token, f"/v2/tasks/{task_id}")
    assert task["status"] != "success", task
    logs = first.log_path.read_text() + second.log_path.read_text()
    assert f"refused a result from endpoint {creds_b['endpoint_id']} for task {task_id}" in logs
    assert f"(task {task_id}): ValueError: no endpoint's user_id" in logs

    asyncio.run(publish_result(creds_a, task_id, "genuine"))
    assert _results(first, token, [task_id])[task_id]["result"] == "genuine"


def test_a_result_larger_than_the_service_keeps_fails_its_task(
    stack: tuple[ServiceProcess, ServiceProcess, str, str],
) -> None:
    first, _, token, _ = stack
    creds = _register(first, token, "a")
    [task_id] = _submit(first, token, creds["endpoint_id"], _function(first, token), 1)
    asyncio.run(publish_result(creds, task_id, "x" * (MAX_BODY + 1)))
    ended = _results(first, token, [task_id])[task_id]
    assert ended["status"] == "failed", ended
    assert "max_body_bytes" in ended["exception"]


async def _ignore(_message: AbstractIncomingMessage) -> None:
    pass


async def _refused(work: Any) -> str:
    """The error ``work`` (a coroutine using a channel) ends with; it must fail."""
    try:
        await work
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    raise AssertionError("the broker allowed it")


def test_an_endpoints_credentials_read_only_its_queue_and_write_only_results(
    stack: tuple[ServiceProcess, ServiceProcess, str, str],
) -> None:
    first, _, token, _ = stack
    creds_a = _register(first, token, "a")
    creds_b = _register(first, token, "b")
    name = creds_a["result_queue_info"]["queue_publish_kwargs"]["properties"]["user_id"]

    async def check() -> list[str]:
        url = creds_a["task_queue_info"]["connection_url"]
        errors: list[str] = []
        connection = await aio_pika.connect(url, timeout=PATIENCE)
        async with connection:
            async def on(coro_fn: Any) -> None:
                channel = await connection.channel(publisher_confirms=True)
                errors.append(await _refused(coro_fn(channel)))

            async def consume_other(channel: Any) -> None:
                queue = await channel.get_queue(creds_b["task_queue_info"]["queue"],
                                                ensure=False)
                await queue.consume(_ignore)

            async def declare(channel: Any) -> None:
                await channel.declare_queue("farcall.tasks.mine", durable=True)

            async def publish_default(channel: Any) -> None:
                await channel.default_exchange.publish(
                    aio_pika.Message(b"x", user_id=name),
                    routing_key=creds_b["task_queue_info"]["queue"])

            async def publish_as_other(channel: Any) -> None:
                kwargs = creds_a["result_queue_info"]["queue_publish_kwargs"]
                exchange = await channel.get_exchange(kwargs["exchange"], ensure=False)
                other = creds_b["result_queue_info"]["queue_publish_kwargs"]["properties"]
                await exchange.publish(aio_pika.Message(b"x", user_id=other["user_id"]),
                                       routing_key=kwargs["routing_key"])

            for work in (consume_other, declare, publish_default, publish_as_other):
                await on(work)
            # Its own queue it may read.
            channel = await connection.channel()
            queue = await channel.get_queue(creds_a["task_queue_info"]["queue"], ensure=False)
            await queue.consume(_ignore)
        return errors

    consume_other, declare, publish_default, publish_as_other = asyncio.run(check())
    assert "ACCESS_REFUSED" in consume_other
    assert "ACCESS_REFUSED" in declare
    assert "ACCESS_REFUSED" in publish_default
    assert "PRECONDITION_FAILED" in publish_as_other


def test_deleting_an_endpoint_removes_its_broker_user_and_queue(
    stack: tuple[ServiceProcess, ServiceProcess, str, str],
) -> None:
    first, second, token, _ = stack
    creds = _register(first, token, "a")
    url = creds["task_queue_info"]["connection_url"]

    async def connects() -> bool:
        try:
            connection = await aio_pika.connect(url, timeout=PATIENCE)
        except Exception as exc:
            assert "ACCESS_REFUSED" in str(exc), exc
            return False
        await connection.close()
        return True

    assert asyncio.run(connects())
    _call("DELETE", second, token, f"/v2/endpoints/{creds['endpoint_id']}")
    assert not asyncio.run(connects())


def test_tasks_still_end_when_a_service_process_is_killed_while_forwarding(
    stack: tuple[ServiceProcess, ServiceProcess, str, str],
) -> None:
    first, second, token, _ = stack
    creds = _register(second, token, "amqp-ep")
    endpoint_id = creds["endpoint_id"]
    function_id = _function(second, token)
    with EchoEndpoint(creds) as endpoint:
        task_ids: list[str] = []
        for _ in range(5):  # both processes race to forward every batch
            task_ids += _submit(second, token, endpoint_id, function_id, 100)
        first.kill()  # at once: whatever it claimed and had not committed goes back
        task_ids += _submit(second, token, endpoint_id, function_id, 100)
        ended = _results(second, token, task_ids)
    assert sorted(ended) == sorted(task_ids)
    assert all(ended[t]["result"] == f"echo:{t}" for t in task_ids)
    assert set(endpoint.received) == set(task_ids)  # at least once


def test_an_amqp_heartbeat_answers_the_endpoint_s_status(
    stack: tuple[ServiceProcess, ServiceProcess, str, str],
) -> None:
    first, second, token, _ = stack
    creds = _register(first, token, "a")
    endpoint_id = creds["endpoint_id"]
    info = creds["heartbeat_queue_info"]
    kwargs = info["queue_publish_kwargs"]
    report = {"message_type": "ep_status_report", "data": {
        "endpoint_id": endpoint_id, "task_statuses": {},
        "ep_status_report": {"total_workers": 7, "idle_workers": 3, "managers": 1,
                             "heartbeat_period": 30, "secrets": "not kept"}}}

    async def beat() -> None:
        connection = await aio_pika.connect(info["connection_url"], timeout=PATIENCE)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(kwargs["exchange"], ensure=False)
            await exchange.publish(
                aio_pika.Message(VERSION + json.dumps(report).encode(), delivery_mode=2,
                                 user_id=kwargs["properties"]["user_id"]),
                routing_key=kwargs["routing_key"])

    asyncio.run(beat())
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        status = _call("GET", second, token, f"/v2/endpoints/{endpoint_id}/status")
        if status["details"]["total_workers"] == 7:
            break
        time.sleep(0.2)
    assert status["status"] == "online"
    assert status["details"]["total_workers"] == 7 and status["details"]["idle_workers"] == 3


class TestRabbitMQEndpointQueues(EndpointQueueContract):
    name = "rabbitmq"

    @pytest.fixture
    def settings(self, tmp_path: Path, broker_url: str) -> Settings:
        return Settings(home=tmp_path, broker=broker_url)
