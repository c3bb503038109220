"""The unmodified official globus-compute-endpoint 4.19 runs farcall's tasks.

One endpoint for the module (starting one takes a while): installed from the package
registry, configured with its own CLI, started as an unprivileged user against
farcall on 127.0.0.1:5000 with RabbitMQ (``farcall_testkit.official_endpoint``).
Tasks come from farcall's SDK, the official Client and the official Executor (each a
script in its own interpreter, its functions in ``__main__``); farcall's own endpoint
serves beside it. Then a stop and restart, a SIGKILL mid-batch, and an
``allowed_functions`` restriction. ``FARCALL_SOAK=1``: 1,000 tasks, not 60.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from farcall_testkit import official_endpoint as official
from farcall_testkit.endpoint import Api, EndpointProcess
from farcall_testkit.servers import PostgreSQL, RabbitMQ, unavailable
from farcall_testkit.waiting import wait_for

HERE = Path(__file__).resolve().parent
SOAK = os.environ.get("FARCALL_SOAK", "") not in ("", "0")
#: Tasks across the three SDKs.
TASKS = 1000 if SOAK else 60
#: Seconds the endpoint may take to start (a user endpoint starts a worker pool).
START = 180.0
#: Seconds a batch may take.
PATIENCE = 600.0


def square(x: int) -> int:
    return x * x


def cube(x: int) -> int:
    return x * x * x


def register_square(api: Api) -> str:
    """``square`` sent as its source: the endpoint cannot import this module."""
    from farcall.serialize import Serializer

    return api.register_function(square, serializer=Serializer(code_strategy="st"))


@pytest.fixture(scope="module")
def endpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             postgresql: PostgreSQL, rabbitmq: RabbitMQ) -> Iterator[official.OfficialEndpoint]:
    """The official endpoint, started and registered, with its farcall side
    (``.farcall``); its user endpoints beat every 2 seconds."""
    from farcall_testkit.scaled import broker_installed

    problem = official.can_make_users()
    if problem is None and not broker_installed():
        problem = "no installed broker serves amqp:// URLs: install plugins/broker_rabbitmq"
    if problem is not None:
        unavailable(problem)
    script = official.endpoint_venv(official.venv_path(request.config.rootpath))
    home = tmp_path_factory.mktemp("official")
    db_url, broker_url = postgresql.create_database(), rabbitmq.create_vhost()
    try:
        with official.port_turn(), \
                official.farcall_on_port(home / "farcall", db_url, broker_url) as farcall, \
                official.official_endpoint(script, farcall) as started:
            template = (started.ep_dir / "user_config_template.yaml.j2").read_text()
            started.write_file("user_config_template.yaml.j2",
                               template + "\nheartbeat_period: 2\n")
            started.start()
            wait_for(lambda: started.endpoint_id or started.exited() is not None, START,
                     "the endpoint's registration")
            assert started.endpoint_id, started.logs()
            yield started
    finally:
        rabbitmq.delete_vhost(broker_url)
        postgresql.drop_database(db_url)


def stopped(endpoint: official.OfficialEndpoint) -> None:
    """Wait until none of the endpoint user's processes is left; then remove a PID file
    a killed endpoint left, as its admin would (a fresh one makes it refuse to start)."""
    wait_for(lambda: not endpoint.user.pids(), START, "the endpoint's processes to end",
             every=0.2)
    (endpoint.ep_dir / "daemon.pid").unlink(missing_ok=True)


def run_script(python: str, name: str, endpoint: official.OfficialEndpoint,
               count: int) -> dict[str, Any]:
    farcall = endpoint.farcall
    done = subprocess.run(
        [python, str(HERE / name), farcall.url, farcall.token, str(endpoint.endpoint_id),
         str(count)],
        capture_output=True, text=True, timeout=PATIENCE, cwd=HERE,
        env={**os.environ, "HOME": str(farcall.home), "GLOBUS_SDK_ENVIRONMENT": "production"})
    assert done.returncode == 0, f"{name}:\n{done.stderr[-4000:]}\n{endpoint.logs()}"
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def official_sdk(endpoint: official.OfficialEndpoint, compat_python: str) -> dict[str, Any]:
    """What the official Client and Executor saw (a third of the tasks each)."""
    return run_script(compat_python, "official_sdk.py", endpoint, TASKS // 3)


def test_tasks_of_farcall_s_sdk_run_on_it_beside_farcall_s_own_endpoint(
    endpoint: official.OfficialEndpoint, tmp_path: Path,
) -> None:
    out = run_script(sys.executable, "farcall_sdk.py", endpoint, TASKS - 2 * (TASKS // 3))
    assert out["wrong"] == [] and out["ended"] == TASKS - 2 * (TASKS // 3) + 1, out
    assert "ZeroDivisionError" in out["failure"], out

    farcall = endpoint.farcall
    api = farcall.api()
    with EndpointProcess(tmp_path, "farcall-own", farcall.url, farcall.token,
                         heartbeat_period=1.0, claim_wait=2.0) as own:
        function_id = register_square(api)
        ids = api.submit(own.endpoint_id, function_id, [(n,) for n in range(5)])
        ids += api.submit(str(endpoint.endpoint_id), function_id, [(7,)])
        docs = api.wait(ids, PATIENCE)
    assert [api.result(docs[t]) for t in ids] == [0, 1, 4, 9, 16, 49]


def test_tasks_of_the_official_client_and_executor_run_on_it(
    official_sdk: dict[str, Any],
) -> None:
    assert official_sdk["run_wrong"] == [] and official_sdk["executor_wrong"] == []


def test_a_raising_function_gives_the_remote_traceback(official_sdk: dict[str, Any]) -> None:
    failure = official_sdk["failure"]
    assert failure["type"] == "TaskExecutionFailed", failure
    assert "Traceback" in failure["text"] and "exploded remotely: kaboom" in failure["text"]
    remote = official_sdk["executor_failure"]["remote"]
    assert "ValueError: exploded remotely: in the executor" in remote


def test_its_status_shows_its_workers_and_its_metadata(
    endpoint: official.OfficialEndpoint, official_sdk: dict[str, Any],
) -> None:
    assert official_sdk["status"]["details"]["total_workers"] >= 1, official_sdk["status"]
    metadata = official_sdk["metadata"]
    assert metadata["uuid"] == endpoint.endpoint_id
    assert metadata["metadata"]["endpoint_version"] == official.VERSION


def test_stop_and_restart_keep_its_id_and_lose_no_queued_task(
    endpoint: official.OfficialEndpoint,
) -> None:
    api = endpoint.farcall.api()
    endpoint_id = endpoint.endpoint_id
    function_id = register_square(api)
    endpoint.stop()
    stopped(endpoint)
    ids = api.submit(str(endpoint_id), function_id, [(n,) for n in range(20)])
    endpoint.start()
    docs = api.wait(ids, PATIENCE)
    assert [api.result(docs[t]) for t in ids] == [n * n for n in range(20)]
    assert endpoint.endpoint_id == endpoint_id
    mine = [ep for ep in api.call("GET", "/v2/endpoints") if ep["name"] == endpoint.name]
    assert [ep["uuid"] for ep in mine] == [endpoint_id]


def test_after_a_sigkill_mid_batch_and_a_restart_every_task_ends_once(
    endpoint: official.OfficialEndpoint,
) -> None:
    api = endpoint.farcall.api()
    function_id = register_square(api)
    count = 400 if SOAK else 100
    ids = api.submit(str(endpoint.endpoint_id), function_id, [(n,) for n in range(count)])

    def some_ended() -> dict[str, dict[str, Any]] | None:
        docs = api.documents(ids)
        ended = {t: d for t, d in docs.items() if d.get("status") in ("success", "failed")}
        return ended if ended else None

    before = wait_for(some_ended, PATIENCE, "the first results", every=0.2)
    endpoint.kill()
    stopped(endpoint)
    endpoint.start()
    docs = api.wait(ids, PATIENCE)
    assert [api.result(docs[t]) for t in ids] == [n * n for n in range(count)]
    # Recorded once: what had ended before the kill is what is stored now.
    assert {t: docs[t]["completion_t"] for t in before} == {
        t: d["completion_t"] for t, d in before.items()}


def test_a_function_its_config_does_not_allow_fails_with_function_not_allowed(
    endpoint: official.OfficialEndpoint,
) -> None:
    """Queued before the endpoint restarted with ``allowed_functions``: refused by the
    endpoint (its error code kept); submitted after: refused by the service."""
    from farcall.serialize import Serializer

    api = endpoint.farcall.api()
    allowed = register_square(api)
    forbidden = api.register_function(cube, serializer=Serializer(code_strategy="st"))
    endpoint.stop()
    stopped(endpoint)
    queued = api.submit(str(endpoint.endpoint_id), forbidden, [(2,)])
    endpoint.config(allowed_functions=[allowed])
    endpoint.start()
    [ran] = api.submit(str(endpoint.endpoint_id), allowed, [(3,)])
    docs = api.wait([*queued, ran], PATIENCE)
    assert api.result(docs[ran]) == 9
    failure = docs[queued[0]]
    assert failure["status"] == "failed", failure
    assert failure["exception"].startswith("FUNCTION_NOT_ALLOWED: "), failure["exception"]
    assert forbidden in failure["exception"]

    refused = api.http.post(f"{api.url}/v3/endpoints/{endpoint.endpoint_id}/submit",
                            json={"tasks": {forbidden: [api.payload(2)]}}, timeout=60)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "FUNCTION_NOT_ALLOWED"
