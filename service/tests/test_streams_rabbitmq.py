"""Result streams through the service's routes on a real RabbitMQ vhost and a
PostgreSQL database, both made and removed by the test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

pytest.importorskip("farcall_broker_rabbitmq")

from farcall_service import admin  # noqa: E402
from farcall_service.app import create_app  # noqa: E402
from farcall_service.settings import Settings  # noqa: E402
from farcall_testkit.servers import RabbitMQ  # noqa: E402
from farcall_testkit.service import Caller, payload  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture
def alice(tmp_path: Path, postgresql_url: str, broker_url: str) -> Iterator[Caller]:
    settings = Settings(home=tmp_path, db_url=postgresql_url, broker=broker_url,
                        cache_ttl=0.0, rate_limit=0, max_claim_wait=5.0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        store = client.app.state.farcall.store  # type: ignore[attr-defined]
        user = admin.add_user(store, "alice")
        yield Caller(client, user.id, admin.create_token(store, "alice"))


def queue_exists(rabbitmq: RabbitMQ, broker_url: str, name: str) -> bool:
    vhost = unquote(urlsplit(broker_url).path.lstrip("/"))
    try:
        rabbitmq._request("GET", f"/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}")
    except Exception:  # 404
        return False
    return True


def test_a_streamed_group_s_queue_is_declared_and_declared_again_on_reload(
        alice: Caller, rabbitmq: RabbitMQ, broker_url: str) -> None:
    ep, fn = alice.register_endpoint(), alice.register_function()
    answer = alice.post(f"/v3/endpoints/{ep}/submit",
                        json={"tasks": {fn: [payload(1)]}, "create_queue": True})
    assert answer.status_code == 200, answer.text
    group = answer.json()["task_group_id"]
    access = alice.get("/v2/get_amqp_result_connection_url").json()
    assert access["queue_prefix"] == f"farcall.results.{alice.user_id}."
    queue = access["queue_prefix"] + group
    assert queue_exists(rabbitmq, broker_url, queue)
    vhost = quote(unquote(urlsplit(broker_url).path.lstrip("/")), safe="")
    rabbitmq._request("DELETE", f"/api/queues/{vhost}/{quote(queue, safe='')}")  # expired
    assert not queue_exists(rabbitmq, broker_url, queue)
    reloaded = alice.get(f"/v2/taskgroup/{group}")
    assert reloaded.status_code == 200 and reloaded.json()["create_websockets_queue"] is True
    assert queue_exists(rabbitmq, broker_url, queue)
    # Its result then reaches the queue.
    (task,) = alice.claim(ep)
    alice.report(ep, [{"task_id": task["task_id"], "status": "success", "result": "r"}])
    deadline = time.monotonic() + 20
    while True:
        found = rabbitmq._request("GET", f"/api/queues/{vhost}/{quote(queue, safe='')}")
        if isinstance(found, dict) and found.get("messages"):
            break
        assert time.monotonic() < deadline, found
        time.sleep(0.5)


def test_deleting_a_client_removes_its_broker_user(
        alice: Caller, rabbitmq: RabbitMQ, broker_url: str, postgresql_url: str,
        tmp_path: Path) -> None:
    from farcall_testkit.service import admin as admin_command

    store = alice.client.app.state.farcall.store
    client, _secret = admin.create_client(store, "alice")
    robot = Caller(alice.client, client.principal_id,
                   admin.create_token(store, client.principal_id))
    access = robot.get("/v2/get_amqp_result_connection_url")
    assert access.status_code == 200, access.text
    assert any(client.principal_id in name for name in rabbitmq.users())
    admin_command(tmp_path, "client", "delete", client.id, "--db", postgresql_url,
                  "--broker", broker_url)
    assert not any(client.principal_id in name for name in rabbitmq.users())
