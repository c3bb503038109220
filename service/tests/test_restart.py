"""Nothing accepted is lost: SIGKILL the service mid-run, restart it, every task finishes once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import requests
from farcall.serialize import Serializer
from farcall_service.storage.sql import SqlStore
from farcall_testkit.service import MiniWorker, ServiceProcess, admin, payload

TASKS = 1000
SLOW_SQUARE = "def slow_square(x):\n    import time\n    time.sleep(0.002)\n    return x * x\n"


def _wait(predicate, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def test_tasks_survive_sigkill(tmp_path: Path) -> None:
    admin(tmp_path, "user", "add", "alice")
    token = admin(tmp_path, "token", "create", "alice")
    headers = {"Authorization": f"Bearer {token}"}
    first = ServiceProcess(tmp_path, args=["--requeue-timeout", "60"])
    second = ServiceProcess(tmp_path, port=first.port)
    worker: MiniWorker | None = None
    http = requests.Session()
    http.headers.update(headers)
    try:
        first.start()
        url = first.url
        ep = http.post(f"{url}/v3/endpoints", json={"endpoint_name": "ep"}).json()["endpoint_id"]
        fn = http.post(f"{url}/v3/functions", json={
            "function_name": "slow_square", "function_code": SLOW_SQUARE, "serialized": False,
        }).json()["function_uuid"]
        task_ids: list[str] = []
        for start in range(0, TASKS, 250):
            answer = http.post(f"{url}/v3/endpoints/{ep}/submit", json={
                "tasks": {fn: [payload(i) for i in range(start, start + 250)]}})
            assert answer.status_code == 200, answer.text
            task_ids += answer.json()["tasks"][fn]
        assert len(set(task_ids)) == TASKS

        worker = MiniWorker(url, token, ep, max_tasks=50, wait=1.0)
        worker.start()
        _wait(lambda: len(worker.acknowledged) >= 100)
        first.kill(signal.SIGKILL)
        done_at_kill = _count_done(tmp_path)
        assert done_at_kill < TASKS, "the run finished before the kill; nothing was tested"

        second.start()
        _wait(lambda: _count_done(tmp_path) == TASKS)
        worker.stop()
        assert not [e for e in worker.errors if not e.startswith(("claim: 5", "results: 5"))]

        statuses = _statuses(http, url, task_ids)
        serializer = Serializer()
        assert [statuses[t]["status"] for t in task_ids] == ["success"] * TASKS
        assert [serializer.deserialize(statuses[t]["result"]) for t in task_ids] == [
            i * i for i in range(TASKS)
        ]
        # Recorded once: resending every result, with other values, changes nothing.
        resend = [{"task_id": t, "status": "success", "result": serializer.serialize(-1)}
                  for t in task_ids]
        answer = http.post(f"{url}/farcall/v1/endpoints/{ep}/results",
                           json={"session": "late", "results": resend}).json()
        assert sorted(answer["acknowledged"]) == sorted(task_ids)
        assert _statuses(http, url, task_ids) == statuses
    finally:
        if worker is not None:
            worker.stop()
        http.close()
        first.kill()
        second.stop()


def _count_done(home: Path) -> int:
    store = SqlStore(f"sqlite:///{home / 'service' / 'farcall.db'}")
    try:
        with store.engine.connect() as conn:
            return int(conn.exec_driver_sql(
                "SELECT count(*) FROM tasks WHERE status IN ('success', 'failed')"
            ).scalar_one())
    finally:
        store.close()


def _statuses(http: requests.Session, url: str, task_ids: list[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for start in range(0, len(task_ids), 500):
        answer = http.post(f"{url}/v2/batch_status", json={"task_ids": task_ids[start:start + 500]})
        found.update(answer.json()["results"])
    return found
