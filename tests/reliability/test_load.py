"""Many clients, in threads and in processes, submit and poll against a real service and
endpoint for a bounded time: nothing lost, nothing duplicated, no 5xx. Figures are
printed in the run's summary, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import load_client
import reliability_kit as kit
from farcall_testkit.endpoint import create_user

SECONDS = kit.scale(8.0, 90.0)
THREADS = kit.scale(4, 8)
PROCESSES = kit.scale(2, 4)


def double(x):
    return 2 * x


def test_concurrent_clients(stack: kit.Stack) -> None:
    endpoint = stack.endpoint("load", workers=2)
    endpoint.start()
    api = stack.api()
    api.call("PUT", f"/v3/endpoints/{endpoint.endpoint_id}",
             json={"endpoint_name": "load", "public": True})  # open to the other users
    fn = kit.register(api, double, public=True)
    tokens = [stack.token] + [create_user(stack.home, f"load{i}") for i in range(3)]
    reports: list[dict[str, Any]] = []
    lock = threading.Lock()

    def in_thread(token: str) -> None:
        report = load_client.run(stack.url, token, endpoint.endpoint_id, fn, SECONDS)
        with lock:
            reports.append(report)

    began = time.monotonic()
    script = str(Path(load_client.__file__))
    procs = [subprocess.Popen([sys.executable, script, stack.url, tokens[i % len(tokens)],
                               endpoint.endpoint_id, fn, str(SECONDS)],
                              stdout=subprocess.PIPE, start_new_session=True)
             for i in range(PROCESSES)]
    threads = [threading.Thread(target=in_thread, args=(tokens[i % len(tokens)],))
               for i in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=SECONDS + 180)
            assert proc.returncode == 0
            reports.append(json.loads(out))
    finally:
        for proc in procs:
            proc.kill()
    for thread in threads:
        thread.join(SECONDS + 180)
    elapsed = time.monotonic() - began
    _check_and_record(stack, endpoint.endpoint_id, reports, elapsed)


def _check_and_record(stack: kit.Stack, endpoint_id: str, reports: list[dict[str, Any]],
                      elapsed: float) -> None:
    assert len(reports) == THREADS + PROCESSES
    ids = [task_id for report in reports for task_id in report["tasks"]]
    assert len(ids) == len(set(ids)), "a task id was handed to two submissions"
    errors: dict[str, int] = {}
    for report in reports:
        for code, n in report["errors"].items():
            errors[code] = errors.get(code, 0) + n
    server_errors = sum(report["server_errors"] for report in reports)
    unfinished = [t for r in reports for t, (_x, _v, status) in r["tasks"].items()
                  if status != "success"]
    wrong = [t for r in reports for t, (x, value, status) in r["tasks"].items()
             if status == "success" and value != 2 * x]
    in_db = {row[0] for row in kit.query(stack.home, "SELECT id FROM tasks WHERE endpoint_id = ?",
                                         [endpoint_id])}
    latencies = [v for r in reports for v in r["latencies"]]
    task_latencies = [v for r in reports for v in r["task_latencies"]]
    kit.record("load", clients=len(reports), seconds=round(elapsed, 1), tasks=len(ids),
               tasks_per_s=round(len(ids) / elapsed, 1), requests=len(latencies),
               request_p50_ms=round(1000 * kit.percentile(latencies, 0.5), 1),
               request_p99_ms=round(1000 * kit.percentile(latencies, 0.99), 1),
               task_p50_ms=round(1000 * kit.percentile(task_latencies, 0.5), 1),
               task_p99_ms=round(1000 * kit.percentile(task_latencies, 0.99), 1),
               errors=sum(errors.values()), server_errors=server_errors,
               tasks_lost=len(unfinished) + len(set(ids) - in_db),
               duplicates=len(ids) - len(set(ids)) + len(in_db - set(ids)))
    assert ids, "no task was submitted"
    assert server_errors == 0, errors
    assert not errors, errors
    assert not unfinished, f"{len(unfinished)} tasks did not succeed"
    assert not wrong, f"{len(wrong)} wrong results"
    assert in_db == set(ids), "the database and the clients disagree on the tasks"
