"""The official globus-compute-sdk Executor gets its results over AMQP from a farcall
service on PostgreSQL and RabbitMQ: one ``farcall server start --db postgresql://...
--broker amqp://...`` process, a scratch database and a scratch vhost made and
removed by the test, and a minimal worker serving the endpoint. The Executor reads
results only from its task group's queue, so every result it returns came through
the outbox and the broker."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("farcall_service")
pytest.importorskip("farcall_broker_rabbitmq")

from farcall_testkit.servers import PostgreSQL, RabbitMQ  # noqa: E402
from farcall_testkit.service import MiniWorker, ServiceProcess, admin  # noqa: E402

pytestmark = pytest.mark.compat

COMPAT_PYTHON = os.environ.get("FARCALL_COMPAT_PYTHON", "")

EXECUTOR_SCRIPT = textwrap.dedent(
    '''
    import json, sys

    import globus_sdk
    from globus_compute_sdk.sdk import client as client_module

    url, token = sys.argv[1], sys.argv[2]
    client_module.get_web_service_url = lambda *_args, **_kwargs: url

    from globus_compute_sdk import Client, Executor

    def double(x):
        return 2 * x

    def boom():
        raise ValueError("kaboom over amqp")

    gcc = Client(authorizer=globus_sdk.AccessTokenAuthorizer(token))
    ep_id = gcc.register_endpoint("amqp-endpoint", None)["endpoint_id"]
    print(json.dumps({"endpoint_id": ep_id}), flush=True)
    sys.stdin.readline()

    out = {}
    amqp = gcc.get_result_amqp_url()
    out["queue_prefix"] = amqp["queue_prefix"]
    out["connection_user"] = amqp["connection_url"].split("//")[1].split(":")[0]
    with Executor(endpoint_id=ep_id, client=gcc) as ex:
        futures = [ex.submit(double, i) for i in range(20)]
        out["doubles"] = [f.result(timeout=120) for f in futures]
        failed = ex.submit(boom)
        try:
            failed.result(timeout=120)
            out["failure"] = None
        except Exception as exc:
            out["failure"] = repr(exc)
        out["task_group_id"] = str(ex.task_group_id)
    print(json.dumps(out), flush=True)
    '''
)


@pytest.fixture
def database_url(postgresql: PostgreSQL) -> Iterator[str]:
    url = postgresql.create_database()
    yield url
    postgresql.drop_database(url)


def run_executor(url: str, token: str, workdir: Path, worker_token: str,
                 timeout: float = 240.0) -> tuple[dict[str, Any], list[MiniWorker]]:
    script = workdir / "official_executor.py"
    script.write_text(EXECUTOR_SCRIPT)
    env = {**os.environ, "HOME": str(workdir), "GLOBUS_SDK_ENVIRONMENT": "production"}
    client = subprocess.Popen(
        [COMPAT_PYTHON, str(script), url, token], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=workdir,
        start_new_session=True)
    workers: list[MiniWorker] = []
    try:
        first = client.stdout.readline()  # type: ignore[union-attr]
        if not first:
            raise AssertionError(client.stderr.read())  # type: ignore[union-attr]
        workers.append(MiniWorker(url, worker_token, json.loads(first)["endpoint_id"],
                                  wait=1.0))
        workers[0].start()
        out_text, err_text = client.communicate("go\n", timeout=timeout)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert client.returncode == 0, err_text
    return json.loads(out_text.strip().splitlines()[-1]), workers


@pytest.mark.skipif(not COMPAT_PYTHON, reason="FARCALL_COMPAT_PYTHON is not set")
def test_the_official_executor_gets_results_over_rabbitmq(
        tmp_path: Path, database_url: str, broker_url: str, rabbitmq: RabbitMQ) -> None:
    env = {"FARCALL_SERVICE_DB_URL": database_url, "FARCALL_SERVICE_BROKER": broker_url}
    user_id = admin(tmp_path, "user", "add", "alice", env=env).split()[-1]
    token = admin(tmp_path, "token", "create", "alice", env=env)
    proc = ServiceProcess(tmp_path, env=env)
    proc.start()
    workers: list[MiniWorker] = []
    try:
        out, workers = run_executor(proc.url, token, tmp_path, token)
    finally:
        for worker in workers:
            worker.stop()
        proc.stop()
    assert out["doubles"] == [2 * i for i in range(20)]
    assert out["failure"] is not None and "kaboom over amqp" in out["failure"]
    assert out["queue_prefix"].startswith("farcall.results.")
    assert out["connection_user"].endswith(out["queue_prefix"].split(".")[2])
    assert workers[0].errors == []
    assert any(name.endswith(out["queue_prefix"].split(".")[2]) for name in rabbitmq.users())
    # Removing the user ends their broker credentials too.
    admin(tmp_path, "user", "remove", "alice", "--force", env=env)
    assert not any(user_id in name for name in rabbitmq.users())
