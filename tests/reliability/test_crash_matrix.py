"""SIGKILL the service, the endpoint or a worker while a large batch is submitted,
dispatched or reporting: every accepted task ends once, in success or an explained failure.

Tasks return a fresh random token, so a result recorded twice would change what the
database holds; ``OutcomeWatch`` notes any such change while the batch runs.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
import reliability_kit as kit
import requests
from farcall_testkit.scaled import OutcomeWatch

COMPONENTS = ("service", "endpoint", "worker")
PHASES = ("submit", "dispatch", "results")
TASKS = kit.scale(300, 3000)
CHUNK = 25
WORKER_DIED = "worker process running this task died"


def stamp(i, log=None):
    import time
    import uuid

    if log:
        with open(log, "a") as handle:  # one short append per execution
            handle.write(f"{i}\n")
    time.sleep(0.01)
    return i, uuid.uuid4().hex


class Crasher:
    """Kills one component of the stack and brings it back (a worker is replaced by its pool)."""

    def __init__(self, stack: kit.Stack, endpoint: Any, component: str) -> None:
        self.stack, self.endpoint, self.component = stack, endpoint, component
        self.faults = 0

    def crash(self) -> None:
        self.faults += 1
        if self.component == "service":
            self.stack.restart_service(pause=0.5)
        elif self.component == "endpoint":
            self.endpoint.kill_main()
            self.endpoint.start()
        else:
            pids = kit.wait_for(self.endpoint.worker_pids, 30, "a worker process")
            os.kill(pids[0], signal.SIGKILL)


def submit_chunk(api: Any, endpoint_id: str, fn: str, numbers: range, log: str) -> list[str]:
    """Submit, retrying while the service is away; an unanswered attempt may leave
    orphan tasks behind, which must end like any other."""
    deadline = time.monotonic() + 90
    while True:
        try:
            return api.submit(endpoint_id, fn, [(i, log) for i in numbers])
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "the service did not come back"
            time.sleep(0.2)


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("component", COMPONENTS)
def test_crash_matrix(stack: kit.Stack, component: str, phase: str) -> None:
    log = stack.home / "executions.log"
    endpoint = stack.endpoint(f"crash-{component}", max_batch=40, prefetch=20)
    endpoint.start()
    api = stack.api()
    fn = kit.register(api, stamp)
    crasher = Crasher(stack, endpoint, component)
    watch = OutcomeWatch(kit.ledger(stack.home), period=0.25)
    watch.start()
    accepted: dict[str, int] = {}
    try:
        midway = threading.Event()
        killer = threading.Thread(target=lambda: midway.wait(120) and crasher.crash())
        if phase == "submit":
            killer.start()
        for start in range(0, TASKS, CHUNK):
            numbers = range(start, min(start + CHUNK, TASKS))
            ids = submit_chunk(api, endpoint.endpoint_id, fn, numbers, str(log))
            accepted.update(zip(ids, numbers, strict=True))
            if len(accepted) >= TASKS * 2 // 5:
                midway.set()  # the kill lands while the rest is being submitted
        if phase == "submit":
            killer.join(120)
        elif phase == "dispatch":
            kit.wait_for(lambda: kit.query(stack.home, "SELECT count(*) FROM tasks "
                                           "WHERE status = 'running'")[0][0], 60, "claimed tasks")
            assert kit.count_terminal(stack.home) < TASKS, "finished before the kill"
            crasher.crash()
        else:
            kit.wait_for(lambda: kit.count_terminal(stack.home) >= TASKS * 2 // 5, 90,
                         "40% of the results")
            assert kit.count_terminal(stack.home) < TASKS, "finished before the kill"
            crasher.crash()
        assert crasher.faults == 1
        kit.wait_for(lambda: all(row[0] in kit.TERMINAL
                                 for row in kit.task_rows(stack.home).values()),
                     kit.scale(120, 600), "every task ending")
    finally:
        watch.stop()
    rows = kit.task_rows(stack.home)
    _check_outcomes(api, rows, accepted, component, crasher.faults)
    assert not watch.changes, f"outcomes changed after being recorded: {watch.changes[:5]}"

    # Recorded once: conflicting late results are acknowledged and change nothing.
    endpoint.stop()
    resend = [{"task_id": t, "status": "success", "result": api.serializer.serialize(-1)}
              for t in accepted]
    answer = api.call("POST", f"/farcall/v1/endpoints/{endpoint.endpoint_id}/results",
                      json={"session": "late", "results": resend})
    assert sorted(answer["acknowledged"]) == sorted(accepted)
    assert kit.task_rows(stack.home) == rows
    executions = log.read_text().split()
    kit.record("crash matrix", runs=1, tasks_submitted=len(accepted),
               executions=len(executions), re_executions=max(0, len(executions) - len(rows)),
               orphans=len(set(rows) - set(accepted)), faults_injected=crasher.faults,
               tasks_lost=0, duplicates=len(watch.changes),
               explained_failures=sum(1 for r in rows.values() if r[0] == "failed"))


def _check_outcomes(api: Any, rows: dict[str, tuple[str, str | None, str | None]],
                    accepted: dict[str, int], component: str, faults: int) -> None:
    lost = [t for t in accepted if t not in rows or rows[t][0] not in kit.TERMINAL]
    assert not lost, f"{len(lost)} accepted tasks lost"
    failed = {t: rows[t][2] or "" for t in rows if rows[t][0] == "failed"}
    if component == "worker":  # only the task the killed worker was running may fail
        assert len(failed) <= faults, failed
        assert all(WORKER_DIED in text for text in failed.values()), failed
    else:
        assert not failed, failed
    for task_id, number in accepted.items():
        if task_id not in failed:
            value, _token = api.serializer.deserialize(rows[task_id][1])
            assert value == number, (task_id, value, number)


def test_worker_killed_while_starting(stack: kit.Stack) -> None:
    """A worker killed before it is ready is replaced; the queued tasks wait for a
    worker instead of failing (only workers that repeatedly cannot start fail them)."""
    endpoint = stack.endpoint("early-crash", max_batch=40, prefetch=20)
    api = stack.api()
    fn = kit.register(api, stamp)
    api.register_endpoint(endpoint.endpoint_id, "early-crash")
    ids = api.submit(endpoint.endpoint_id, fn, [(i,) for i in range(60)])
    endpoint.start()
    [victim, *_] = kit.wait_for(endpoint.worker_pids, 30, "a worker process")
    os.kill(victim, signal.SIGKILL)
    docs = api.wait(ids, timeout=120)
    failed = [d.get("exception", "")[:300] for d in docs.values() if d["status"] != "success"]
    # Had it become ready and taken a task, that one task fails; nothing else may.
    assert len(failed) <= 1 and all(WORKER_DIED in text for text in failed), failed
    for number, task_id in enumerate(ids):
        if docs[task_id]["status"] == "success":
            assert api.serializer.deserialize(docs[task_id]["result"])[0] == number
    kit.record("crash matrix", faults_injected=1, tasks_submitted=len(ids))
