"""The official SDK's own AMQP client (pika, in .venv-compat) reads a result stream with
the URL ``access`` hands out, and its messagepack loads what it reads: the Executor's
``_ResultWatcher`` does the same (``pika.URLParameters``, ``basic_consume`` of
``{queue_prefix}{task_group_id}``, ``messagepack.unpack``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from farcall_broker_rabbitmq.broker import RabbitMQBroker
from farcall_service.settings import Settings
from farcall_service.testing.stream_contract import ended

READ = """
import json, sys
import pika
from globus_compute_common import messagepack
url, queue, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
out = []
for method, properties, body in channel.consume(queue, inactivity_timeout=20):
    if method is None:
        break
    result = messagepack.unpack(body)
    out.append({"task_id": str(result.task_id), "is_error": result.is_error,
                "data": result.data, "timestamp": properties.timestamp})
    channel.basic_ack(method.delivery_tag)
    if len(out) == count:
        break
connection.close()
print(json.dumps(out))
"""


@pytest.fixture
def broker(tmp_path: Path, broker_url: str) -> Iterator[RabbitMQBroker]:
    broker = RabbitMQBroker(Settings(home=tmp_path, broker=broker_url))
    broker.start()
    yield broker
    broker.stop()


def test_the_official_client_reads_a_result_stream_with_the_access_url(
    broker: RabbitMQBroker, compat_python: str,
) -> None:
    owner, group = str(uuid.uuid4()), str(uuid.uuid4())
    tasks = [ended(owner, group), ended(owner, group, failed=True)]

    async def prepare() -> str:
        await broker.streams.open(owner, group)
        await broker.streams.publish(tasks)
        access = await broker.streams.access(owner)
        return access.connection_url

    url = asyncio.run(prepare())
    read = subprocess.run(
        [compat_python, "-c", READ, url, f"farcall.results.{owner}.{group}", "2"],
        capture_output=True, text=True, timeout=120)
    assert read.returncode == 0, read.stderr
    results = {r["task_id"]: r for r in json.loads(read.stdout)}
    assert set(results) == {t.id for t in tasks}
    assert results[tasks[0].id]["data"] == "42" and not results[tasks[0].id]["is_error"]
    assert results[tasks[1].id]["is_error"]
    assert all(r["timestamp"] for r in results.values())
