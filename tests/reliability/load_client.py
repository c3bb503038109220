"""One load-test client: submit small batches and poll them until a deadline, then
wait for its own tasks. Runs in a thread, or as a process:
``python load_client.py URL TOKEN ENDPOINT FUNCTION SECONDS`` prints a JSON report."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import requests

BATCH = 10


def payload(x: int) -> str:
    from farcall.serialize import Serializer, pack_buffers

    serializer = Serializer()
    return pack_buffers([serializer.serialize((x,)), serializer.serialize({})])


def run(url: str, token: str, endpoint_id: str, function_id: str, seconds: float,
        drain: float = 120.0) -> dict[str, Any]:
    """Returns {"tasks": {id: [arg, result-or-None, status]}, "latencies": [...],
    "task_latencies": [...], "errors": {status: n}, "server_errors": n}."""
    from farcall.serialize import Serializer

    serializer = Serializer()
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    tasks: dict[str, list[Any]] = {}
    submitted_at: dict[str, float] = {}
    pending: set[str] = set()
    latencies: list[float] = []
    task_latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = 0

    def call(method: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        began = time.monotonic()
        try:
            answer = http.request(method, url + path, json=body, timeout=60)
        except requests.RequestException as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return None
        latencies.append(time.monotonic() - began)
        if answer.status_code != 200:
            errors[str(answer.status_code)] = errors.get(str(answer.status_code), 0) + 1
            return None
        return answer.json()

    def poll() -> None:
        if not pending:
            return
        ask = sorted(pending)[:500]
        found = call("POST", "/v2/batch_status", {"task_ids": ask})
        now = time.monotonic()
        for task_id, doc in (found or {}).get("results", {}).items():
            if doc.get("status") in ("success", "failed"):
                pending.discard(task_id)
                task_latencies.append(now - submitted_at[task_id])
                result = doc.get("result")
                tasks[task_id][1] = serializer.deserialize(result) if result else None
                tasks[task_id][2] = doc["status"]

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        args = list(range(counter, counter + BATCH))
        counter += BATCH
        answer = call("POST", f"/v3/endpoints/{endpoint_id}/submit",
                      {"tasks": {function_id: [payload(x) for x in args]}})
        now = time.monotonic()
        new_ids = (answer or {}).get("tasks", {}).get(function_id, [])
        for task_id, x in zip(new_ids, args, strict=False):
            tasks[task_id] = [x, None, "pending"]
            submitted_at[task_id] = now
            pending.add(task_id)
        poll()
    end = time.monotonic() + drain
    while pending and time.monotonic() < end:
        poll()
        time.sleep(0.05)
    http.close()
    server_errors = sum(n for code, n in errors.items() if code.startswith("5"))
    return {"tasks": tasks, "latencies": latencies, "task_latencies": task_latencies,
            "errors": errors, "server_errors": server_errors}


if __name__ == "__main__":
    url_, token_, endpoint_, function_, seconds_ = sys.argv[1:6]
    json.dump(run(url_, token_, endpoint_, function_, float(seconds_)), sys.stdout)
