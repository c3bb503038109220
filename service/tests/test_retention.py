"""Ended tasks are kept ``result_retention`` seconds, then purged, and read "expired".

The service runs in process with a one-second retention and a purge every tenth of a
second; the purge is real (its loop in the lifecycle, its batches in the database).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from farcall_service import retention
from farcall_service.settings import Settings
from farcall_service.storage import open_store
from farcall_service.testing.store_fixtures import at_once, seed
from farcall_service.testing.store_retention_contract import end_tasks, purge_all
from farcall_testkit.service import Caller, assert_error, sdk_channel


@pytest.fixture
def settings(tmp_path: Path, database: str) -> Settings:
    return Settings(home=tmp_path, db_url=database, cache_ttl=0.0, rate_limit=0,
                    max_claim_wait=5.0, result_retention=1.0, purge_interval=0.1,
                    purge_batch_size=2)


def old_id(seconds_ago: float) -> str:
    """A version 7 UUID made ``seconds_ago``, as the service makes task ids."""
    ms = int((time.time() - seconds_ago) * 1000)
    value = ms << 80 | 0x7 << 76 | 0b10 << 62 | int.from_bytes(os.urandom(7), "big")
    return str(uuid.UUID(int=value))


def run_one(caller: Caller, ep: str, fn: str, value: int = 3) -> str:
    """Submit one task, claim it and report its result as the endpoint would."""
    task_id: str = caller.submit(ep, fn, value).json()["tasks"][fn][0]
    (task,) = caller.claim(ep)
    caller.report(ep, [{"task_id": task["task_id"], "status": "success", "result": "9"}])
    return task_id


def until_expired(caller: Caller, task_id: str, timeout: float = 30.0) -> Any:
    """The answer to GET of ``task_id`` once the purge has taken it."""
    deadline = time.monotonic() + timeout
    while True:
        answer = caller.get(f"/v2/tasks/{task_id}")
        if answer.status_code != 200 or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_a_result_is_read_any_number_of_times_then_reads_expired(
        alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    task_id = run_one(alice, ep, fn)
    for _ in range(3):
        answer = alice.get(f"/v2/tasks/{task_id}")
        assert answer.status_code == 200 and answer.json()["result"] == "9"
    gone = assert_error(until_expired(alice, task_id), 410, "TASK_EXPIRED")
    assert gone["message"] == (f"task {task_id} has expired: the service keeps a task and "
                               "its result for 1 second after it ends, then deletes them")
    expected = retention.expired_document(task_id, 1.0)
    assert expected["status"] == "failed" and expected["exception"] == gone["message"]
    batch = alice.post("/v2/batch_status", json={"task_ids": [task_id]}).json()
    assert batch["results"] == {task_id: expected}
    # A wait answers at once, however long it may last, over HTTP and the channel.
    waited = alice.post("/farcall/v1/tasks/wait", json={"task_ids": [task_id], "timeout": 60})
    assert waited.json()["results"] == {task_id: expected}
    with sdk_channel(alice) as ws:
        ws.send_text(json.dumps({"op": "wait", "task_ids": [task_id], "timeout": 60}))
        assert json.loads(ws.receive_text())["results"] == {task_id: expected}


def test_unfinished_tasks_are_kept_past_the_retention_time(
        alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    queued = alice.submit(ep, fn, 1).json()["tasks"][fn][0]
    ended = alice.submit(ep, fn, 2).json()["tasks"][fn][0]
    tasks = alice.claim(ep, max_tasks=2)
    running = tasks[0]["task_id"]
    assert running == queued
    alice.report(ep, [{"task_id": ended, "status": "failed", "exception": "boom"}])
    assert_error(until_expired(alice, ended), 410, "TASK_EXPIRED")
    assert alice.get(f"/v2/tasks/{running}").json()["status"] == "running"
    # One of the caller's own old unfinished tasks is waited for, not called expired.
    waited = alice.post("/farcall/v1/tasks/wait", json={"task_ids": [running, ended],
                                                        "timeout": 0}).json()["results"]
    assert set(waited) == {ended}


def test_another_users_task_reads_as_an_unknown_id_of_the_same_age(
        alice: Caller, make_caller: Any, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    bob = make_caller("bob")
    purged = run_one(alice, ep, fn)
    assert_error(until_expired(alice, purged), 410, "TASK_EXPIRED")
    live = alice.submit(ep, fn, 5).json()["tasks"][fn][0]
    never_used = old_id(3600)
    for task_id, status in ((purged, 410), (never_used, 410), (live, 404),
                            (old_id(0), 404), (str(uuid.uuid4()), 404)):
        answer = assert_error(bob.get(f"/v2/tasks/{task_id}"), status)
        assert answer == {"code": "TASK_EXPIRED" if status == 410 else "TASK_NOT_FOUND",
                          "message": answer["message"]}
        assert task_id in answer["message"]
    batch = bob.post("/v2/batch_status", json={"task_ids": [purged, never_used, live]})
    assert set(batch.json()["results"]) == {purged, never_used}
    waited = bob.post("/farcall/v1/tasks/wait", json={"task_ids": [live], "timeout": 0})
    assert waited.json()["results"] == {}


def test_ids_not_made_by_the_service_never_read_expired(alice: Caller) -> None:
    assert_error(alice.get(f"/v2/tasks/{uuid.uuid4()}"), 404, "TASK_NOT_FOUND")
    assert retention.made_at(str(uuid.uuid4())) is None
    assert retention.expired(old_id(10), 0.0) is False  # 0 keeps everything
    assert retention.expired(old_id(10), 5.0) and not retention.expired(old_id(1), 5.0)
    ids = [old_id(10), old_id(1), str(uuid.uuid4()), old_id(20)]
    assert retention.expired_among(ids, {ids[3]}, 5.0) == [ids[0]]
    assert retention.expired_among(ids, set(), 0.0) == []


def test_the_retention_time_reads_as_people_say_it() -> None:
    assert [retention.describe(s) for s in (14 * 86400, 86400, 7200, 90, 1, 2.5)] == [
        "14 days", "1 day", "2 hours", "90 seconds", "1 second", "2.5 seconds"]


@pytest.fixture
def two_stores(postgresql_url: str) -> Iterator[tuple[Any, Any]]:
    first, second = open_store(postgresql_url), open_store(postgresql_url, migrate=False)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def test_two_processes_purging_one_postgresql_database_delete_each_task_once(
        two_stores: tuple[Any, Any]) -> None:
    first, second = two_stores
    seeded = seed(first)
    ids = seeded.submit(300, at=seeded.now)
    end_tasks(seeded, ids, seeded.now + 1)
    kept = seeded.submit(3, at=seeded.now)
    stores = iter([first, second, first, second])
    deleted = at_once(4, lambda: sum(
        batch.deleted for batch in purge_all(next(stores), seeded.now + 10, 25)))
    assert sum(deleted) == 300
    assert first.get_tasks(ids) == [] and len(second.get_tasks(kept)) == 3
    assert first.usage(seeded.user.id) == (3, 3 * len("payload 0"))
