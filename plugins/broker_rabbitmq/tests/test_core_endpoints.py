"""Core endpoints (the official endpoint 4.x), played by the test with aio-pika as the
official code does it: registration, the start command on the command queue, the user
endpoint's tasks, results and heartbeats, and a restart that sends again what a dead
user endpoint took. Against ``farcall server start`` on PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import requests
from farcall_testkit.servers import PostgreSQL
from farcall_testkit.service import SOURCE, ServiceProcess, admin, payload
from farcall_testkit.waiting import wait_for

#: Seconds anything here may take.
PATIENCE = 60.0
VERSION = b"\x01"
#: What a 4.19 core endpoint sends in its registration (``CoreEndpoint.get_metadata``).
CORE_METADATA = {"endpoint_version": "4.19.0", "hostname": "node1", "local_user": "alice",
                 "endpoint_config": "", "user_config_template": "engine: ...",
                 "user_config_schema": {}}


@pytest.fixture
def service(tmp_path: Path, postgresql: PostgreSQL,
            broker_url: str) -> Iterator[tuple[ServiceProcess, dict[str, str]]]:
    database = postgresql.create_database()
    env = {"FARCALL_SERVICE_DB_URL": database, "FARCALL_SERVICE_BROKER": broker_url}
    tokens = {}
    for name in ("alice", "bob"):
        admin(tmp_path, "user", "add", name, env=env)
        tokens[name] = admin(tmp_path, "token", "create", name, env=env).splitlines()[-1].strip()
    with ServiceProcess(tmp_path, env=env) as process:
        yield process, tokens
    postgresql.drop_database(database)


def _call(method: str, service: ServiceProcess, token: str, path: str,
          body: dict[str, Any] | None = None, status: int = 200) -> Any:
    answer = requests.request(method, service.url + path, json=body, timeout=PATIENCE,
                              headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == status, answer.text
    return answer.json()


def _register(service: ServiceProcess, token: str, endpoint_id: str | None = None
              ) -> dict[str, Any]:
    body = {"endpoint_name": "cluster", "metadata": CORE_METADATA, "public": True}
    if endpoint_id:
        return _call("PUT", service, token, f"/v3/endpoints/{endpoint_id}", body)  # type: ignore[no-any-return]
    return _call("POST", service, token, "/v3/endpoints", body)  # type: ignore[no-any-return]


def _submit(service: ServiceProcess, token: str, endpoint_id: str, function_id: str,
            count: int, config: dict[str, Any] | None = None) -> list[str]:
    answer = _call("POST", service, token, f"/v3/endpoints/{endpoint_id}/submit", {
        "tasks": {function_id: [payload(n) for n in range(count)]},
        "user_endpoint_config": config})
    return list(answer["tasks"][function_id])


async def _take(info: dict[str, Any], count: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """The next ``count`` messages of ``info``'s queue, acked, read without declaring it."""
    connection = await aio_pika.connect(info["connection_url"], timeout=PATIENCE)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(info["queue"], ensure=False)
        taken: list[aio_pika.abc.AbstractIncomingMessage] = []
        async with queue.iterator() as messages:
            async for message in messages:
                await message.ack()
                taken.append(message)
                if len(taken) == count:
                    break
        return taken


def take(info: dict[str, Any], count: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    return asyncio.run(asyncio.wait_for(_take(info, count), PATIENCE))


def publish(info: dict[str, Any], message_type: str, data: dict[str, Any]) -> None:
    """Publish as the official ``ResultPublisher`` does, with ``queue_publish_kwargs``."""
    async def run() -> None:
        kwargs = info["queue_publish_kwargs"]
        connection = await aio_pika.connect(info["connection_url"], timeout=PATIENCE)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(kwargs["exchange"], ensure=False)
            body = VERSION + json.dumps({"message_type": message_type, "data": data}).encode()
            await exchange.publish(aio_pika.Message(body, **kwargs["properties"]),
                                   routing_key=kwargs["routing_key"])
    asyncio.run(run())


def result(task_id: str, data: str, code: str | None = None) -> dict[str, Any]:
    return {"task_id": task_id, "data": data, "details": None, "task_statuses": None,
            "error_details": {"code": code, "user_message": data} if code else None}


def _ended(service: ServiceProcess, token: str, task_ids: list[str]) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        answer = _call("POST", service, token, "/v2/batch_status", {"task_ids": task_ids})
        found = answer["results"]
        return found if all(found[t].get("status") in ("success", "failed")
                            for t in task_ids) else None
    return wait_for(ended, PATIENCE, "the tasks to end", every=0.5)  # type: ignore[no-any-return]


def test_a_core_endpoint_starts_a_user_endpoint_per_user_that_runs_their_tasks(
    service: tuple[ServiceProcess, dict[str, str]],
) -> None:
    process, tokens = service
    alice, bob = tokens["alice"], tokens["bob"]
    answer = _register(process, alice)
    core_id = answer["endpoint_id"]
    commands = answer["command_queue_info"]
    assert commands["queue"] == f"farcall.commands.{core_id}"
    assert answer["heartbeat_queue_info"]["queue_publish_kwargs"]["properties"]["user_id"]
    # A retry without the id (its answer was lost) is the same endpoint.
    assert _register(process, alice)["endpoint_id"] == core_id
    assert _register(process, alice, core_id)["command_queue_info"] == commands

    function_id = _call("POST", process, alice, "/v3/functions", {
        "function_name": "square", "function_code": SOURCE, "serialized": False,
        "public": True})["function_uuid"]
    config = {"worker_init": "module load python"}
    mine = _submit(process, alice, core_id, function_id, 3, config)
    theirs = _submit(process, bob, core_id, function_id, 1)

    started = {}
    for message in take(commands, 2):
        assert message.content_type == "application/json"
        assert message.timestamp is not None
        assert abs(message.timestamp.timestamp() - time.time()) < 180
        body = json.loads(message.body)
        assert body["command"] == "cmd_start_endpoint" and body["args"] == []
        started[body["globus_username"]] = body
    assert set(started) == {"alice", "bob"}
    command = started["alice"]
    who = command["globus_effective_identity"]
    assert [i["sub"] for i in command["globus_identity_set"]] == [who]
    kwargs = command["kwargs"]
    assert kwargs["user_opts"] == config and kwargs["user_runtime"] == {}
    creds = kwargs["amqp_creds"]
    uep_id = creds["endpoint_id"]
    assert uep_id == str(uuid.uuid5(uuid.UUID(core_id), f"{who}\n" + json.dumps(
        config, sort_keys=True, separators=(",", ":"))))
    assert kwargs["name"] == f"uep.{core_id}.{uep_id}"
    assert started["bob"]["kwargs"]["amqp_creds"]["endpoint_id"] != uep_id

    tasks = take(creds["task_queue_info"], 3)
    assert sorted(m.headers["task_uuid"] for m in tasks) == sorted(mine)  # type: ignore[type-var]
    assert all(m.headers["function_uuid"] == function_id for m in tasks)
    results = creds["result_queue_info"]
    publish(results, "result", result(mine[0], "four"))
    publish(results, "result", result(mine[1], "Traceback ...\nZeroDivisionError: x",
                                      "RemoteExecutionError"))
    publish(results, "result", result(mine[2], f"Function {function_id} not permitted",
                                      "FUNCTION_NOT_ALLOWED"))
    publish(results, "result", result(theirs[0], "forged"))  # not alice's task
    ended = _ended(process, alice, mine)
    assert ended[mine[0]]["result"] == "four"
    assert ended[mine[1]]["exception"].endswith("ZeroDivisionError: x")
    assert ended[mine[2]]["exception"].startswith("FUNCTION_NOT_ALLOWED: ")
    wait_for(lambda: "refused a result from user endpoint" in process.log_path.read_text(),
             PATIENCE, "the forged result's refusal", every=0.2)
    bob_task = _call("GET", process, bob, f"/v2/tasks/{theirs[0]}")
    assert bob_task["status"] not in ("success", "failed"), bob_task

    publish(creds["heartbeat_queue_info"], "ep_status_report", {
        "endpoint_id": uep_id, "task_statuses": {},
        "global_state": {"total_workers": 4, "idle_workers": 4, "heartbeat_period": 30}})

    def status() -> dict[str, Any] | None:
        found = _call("GET", process, alice, f"/v2/endpoints/{core_id}/status")
        return found if found["details"]["total_workers"] == 4 else None

    beating = wait_for(status, PATIENCE, "the user endpoint's heartbeat", every=0.5)
    assert beating["status"] == "online"
    # The core endpoint's own last heartbeat says it stops: offline at once, its
    # workers kept for the record.
    publish(answer["heartbeat_queue_info"], "ep_status_report", {
        "endpoint_id": core_id, "task_statuses": {}, "global_state": {"heartbeat_period": 0}})

    def offline() -> dict[str, Any] | None:
        found = _call("GET", process, alice, f"/v2/endpoints/{core_id}/status")
        return found if found["status"] == "offline" else None

    assert wait_for(offline, PATIENCE, "the stop heartbeat", every=0.5)["details"][
        "total_workers"] == 4

    # A start failure comes as 4.19 sends it, without user_id: only logged.
    unsigned = {**creds["heartbeat_queue_info"], "queue_publish_kwargs": {
        **creds["heartbeat_queue_info"]["queue_publish_kwargs"], "properties": {}}}
    publish(unsigned, "ep_status_report", {
        "endpoint_id": uep_id, "task_statuses": {},
        "global_state": {"error": "Ignoring start request for untrusted identity.",
                         "heartbeat_period": 3}})
    wait_for(lambda: f"says endpoint {uep_id} did not start: Ignoring start request"
             in process.log_path.read_text(), PATIENCE, "the start failure's log", every=0.2)


def test_a_restarted_core_endpoint_gets_again_what_its_user_endpoints_took(
    service: tuple[ServiceProcess, dict[str, str]],
) -> None:
    process, tokens = service
    alice = tokens["alice"]
    answer = _register(process, alice)
    core_id = answer["endpoint_id"]
    function_id = _call("POST", process, alice, "/v3/functions", {
        "function_name": "square", "function_code": SOURCE, "serialized": False,
    })["function_uuid"]
    task_ids = _submit(process, alice, core_id, function_id, 2)
    [command] = take(answer["command_queue_info"], 1)
    creds = json.loads(command.body)["kwargs"]["amqp_creds"]
    taken = take(creds["task_queue_info"], 2)  # acked, as handed to an engine; then killed
    assert sorted(m.headers["task_uuid"] for m in taken) == sorted(task_ids)  # type: ignore[type-var]

    again = _register(process, alice, core_id)
    [command] = take(again["command_queue_info"], 1)
    assert json.loads(command.body)["kwargs"]["amqp_creds"] == creds
    resent = take(creds["task_queue_info"], 2)
    assert sorted(m.headers["task_uuid"] for m in resent) == sorted(task_ids)  # type: ignore[type-var]
    # Unfinished tasks: the start is repeated (the user endpoint may have refused to
    # start, or stopped), the same user endpoint with the same credentials.
    [repeated] = take(again["command_queue_info"], 1)
    assert json.loads(repeated.body)["kwargs"]["amqp_creds"] == creds
    for task_id in task_ids:
        publish(creds["result_queue_info"], "result", result(task_id, "done"))
    ended = _ended(process, alice, task_ids)
    assert all(ended[t]["result"] == "done" for t in task_ids)
