"""Two ``farcall server start`` processes on one PostgreSQL database and one RabbitMQ
vhost: a claim waiting in one is woken by a submission to the other, and a result wait
in one by a report to the other, in far less time than the waits would take to look
again by themselves."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from farcall_testkit.servers import PostgreSQL
from farcall_testkit.service import SOURCE, ServiceProcess, admin, payload

#: A cross-process wake-up must beat this by far: the waits below last 30 s.
QUICK = 5.0


@pytest.fixture
def services(tmp_path: Path, postgresql: PostgreSQL,
             broker_url: str) -> Iterator[tuple[ServiceProcess, ServiceProcess, str, str]]:
    database = postgresql.create_database()
    env = {"FARCALL_SERVICE_DB_URL": database, "FARCALL_SERVICE_BROKER": broker_url}
    admin(tmp_path, "user", "add", "alice", env=env)
    token = admin(tmp_path, "token", "create", "alice", env=env).splitlines()[-1].strip()
    with ServiceProcess(tmp_path, env=env) as first, ServiceProcess(tmp_path, env=env) as second:
        yield first, second, token, database
    postgresql.drop_database(database)


def _post(service: ServiceProcess, token: str, path: str, body: dict[str, Any],
          timeout: float = 60) -> Any:
    answer = requests.post(service.url + path, json=body, timeout=timeout,
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _in_background(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        outcome["answer"] = fn()
        outcome["took"] = time.monotonic() - started

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_claims_and_result_waits_are_woken_by_the_other_service_process(
    services: tuple[ServiceProcess, ServiceProcess, str, str],
) -> None:
    first, second, token, database = services
    function_id = _post(first, token, "/v3/functions", {
        "function_name": "square", "function_code": SOURCE, "serialized": False,
    })["function_uuid"]
    endpoint_id = _post(first, token, "/v3/endpoints", {"endpoint_name": "ep"})["endpoint_id"]
    claim_path = f"/farcall/v1/endpoints/{endpoint_id}/claim"
    _post(second, token, claim_path, {"session": "s1", "wait": 0})  # the session is known
    # The first process's first submission to the endpoint finds no claim's offer (it
    # hears them from then on): queued, and claimed from the database.
    warm_up = _post(first, token, f"/v3/endpoints/{endpoint_id}/submit",
                    {"tasks": {function_id: [payload(1)]}})["tasks"][function_id]
    assert [t["task_id"] for t in _post(second, token, claim_path,
                                        {"session": "s1", "wait": 5})["tasks"]] == warm_up

    claiming, claimed = _in_background(
        lambda: _post(second, token, claim_path, {"session": "s1", "wait": 30}))
    time.sleep(1.0)  # the claim waits in the second process
    submitted = _post(first, token, f"/v3/endpoints/{endpoint_id}/submit",
                      {"tasks": {function_id: [payload(7)]}})
    task_id = submitted["tasks"][function_id][0]
    claiming.join(60)
    tasks = claimed["answer"]["tasks"]
    assert len(tasks) == 1 and claimed["took"] < 1.0 + QUICK, claimed
    assert tasks[0]["task_id"] == task_id
    # Handed by the first process to the claim waiting in the second: stored as
    # claimed in the submission's own transaction, not by a claim's.
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT status, claim_session, claimed_at, created_at "
                                       "FROM tasks WHERE id = :id"), {"id": task_id}).one()
    finally:
        engine.dispose()
    assert (row.status, row.claim_session, row.claimed_at) == ("running", "s1", row.created_at)

    waiting, waited = _in_background(lambda: _post(
        first, token, "/farcall/v1/tasks/wait", {"task_ids": [task_id], "timeout": 30}))
    time.sleep(1.0)  # the result wait waits in the first process
    _post(second, token, f"/farcall/v1/endpoints/{endpoint_id}/results", {
        "session": "s1",
        "results": [{"task_id": task_id, "status": "success", "result": "forty-nine"}],
    })
    waiting.join(60)
    assert waited["took"] < 1.0 + QUICK, waited
    assert waited["answer"]["results"][task_id]["result"] == "forty-nine"
