"""Tasks another service process handed to a claim here that had stopped waiting
(``farcall_service.unclaimed``): stored as claimed by the claim's session, which
will never get them, they go back to the queue once their submission committed."""

from __future__ import annotations

import concurrent.futures
import time
import uuid

from farcall_service.brokers.interface import Handed
from farcall_service.context import ServiceContext
from farcall_service.storage.interface import QUEUED, RUNNING, ClaimedTask, NewTask, TaskOptions
from farcall_testkit.service import Caller, payload
from fastapi.testclient import TestClient


def _claim(caller: Caller, ep: str, session: str = "s1") -> list[str]:
    answer = caller.post(f"/farcall/v1/endpoints/{ep}/claim",
                         json={"session": session, "wait": 0})
    assert answer.status_code == 200, answer.text
    return [task["task_id"] for task in answer.json()["tasks"]]


def _handed_elsewhere(ctx: ServiceContext, ep: str, fn: str, owner: str,
                      committed: concurrent.futures.Future[bool | None]) -> Handed:
    """A task as another process hands it to a claim of session s1 before its commit."""
    task_id = str(uuid.uuid4())
    return Handed([ClaimedTask(task_id, fn, payload(6), TaskOptions(), owner_id=owner)],
                  owner, "group", time.time(), committed)


def _commit(ctx: ServiceContext, ep: str, handed: Handed) -> None:
    """The other process's submission commits the task as claimed by s1."""
    task = handed.tasks[0]
    ctx.store.submit(handed.owner_id, str(uuid.uuid4()),
                     [(ep, NewTask(task.id, task.function_id, task.payload))], TaskOptions(),
                     time.time(), claimed={ep: ("s1", [task.id])})


def _status(ctx: ServiceContext, task_id: str) -> str | None:
    task = ctx.store.get_task(task_id)
    return None if task is None else task.status


def test_tasks_no_claim_took_go_back_to_the_queue_after_their_commit(
    alice: Caller, ep_fn: tuple[str, str], client: TestClient, ctx: ServiceContext,
) -> None:
    ep, fn = ep_fn
    assert _claim(alice, ep) == []  # s1 is the endpoint's session
    committed: concurrent.futures.Future[bool | None] = concurrent.futures.Future()
    handed = _handed_elsewhere(ctx, ep, fn, alice.user_id, committed)
    task_id = handed.tasks[0].id
    client.portal.call(ctx.lifecycle.unclaimed.add, ep, "s1", handed)  # type: ignore[union-attr]
    time.sleep(0.3)
    _commit(ctx, ep, handed)  # the word comes later than the release is ready to go
    assert _status(ctx, task_id) == RUNNING and _claim(alice, ep) == []  # s1 holds it
    committed.set_result(True)
    deadline = time.monotonic() + 10
    while _status(ctx, task_id) != QUEUED:
        assert time.monotonic() < deadline, "never released"
        time.sleep(0.05)
    assert _claim(alice, ep) == [task_id]

