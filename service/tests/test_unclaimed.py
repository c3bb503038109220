"""Tasks another service process handed to a claim here that had stopped waiting
(``farcall_service.unclaimed``): stored as claimed by the claim's session, they reach
its next claim here, or go back to the queue when none comes."""

from __future__ import annotations

import concurrent.futures
import time
import uuid

from farcall_service.brokers.interface import Handed
from farcall_service.context import ServiceContext
from farcall_service.storage.interface import QUEUED, ClaimedTask, NewTask, TaskOptions
from farcall_testkit.service import Caller, payload
from fastapi.testclient import TestClient


def _claim(caller: Caller, ep: str, session: str = "s1") -> list[str]:
    answer = caller.post(f"/farcall/v1/endpoints/{ep}/claim",
                         json={"session": session, "wait": 0})
    assert answer.status_code == 200, answer.text
    return [task["task_id"] for task in answer.json()["tasks"]]


def _handed_elsewhere(ctx: ServiceContext, ep: str, fn: str, owner: str) -> Handed:
    """Store a task as claimed by session s1, as another process's submission does
    once it has handed it; the hand as that process sent it, its commit told."""
    task = NewTask(str(uuid.UUID(int=uuid.uuid4().int)), fn, payload(6))
    ctx.store.submit(owner, str(uuid.uuid4()), [(ep, task)], TaskOptions(), time.time(),
                     claimed={ep: ("s1", [task.id])})
    committed: concurrent.futures.Future[bool | None] = concurrent.futures.Future()
    committed.set_result(True)
    code = ctx.store.get_function(fn).code  # type: ignore[union-attr]
    return Handed([ClaimedTask(task.id, fn, code + task.payload, TaskOptions(), owner_id=owner)],
                  owner, "group", time.time(), committed)


def test_kept_tasks_reach_the_session_s_next_claim_and_their_results_are_recorded(
    alice: Caller, ep_fn: tuple[str, str], client: TestClient, ctx: ServiceContext,
) -> None:
    ep, fn = ep_fn
    assert _claim(alice, ep) == []  # s1 is the endpoint's session
    handed = _handed_elsewhere(ctx, ep, fn, alice.user_id)
    task_id = handed.tasks[0].id
    assert _claim(alice, ep) == []  # the database hands out nothing s1 holds
    client.portal.call(ctx.lifecycle.unclaimed.add, ep, "s1", handed)  # type: ignore[union-attr]
    assert _claim(alice, ep) == [task_id]
    answer = alice.post(f"/farcall/v1/endpoints/{ep}/results", json={
        "session": "s1", "results": [{"task_id": task_id, "status": "success",
                                      "result": "36"}]})
    assert answer.json() == {"acknowledged": [task_id], "rejected": []}
    assert ctx.store.get_task(task_id).status == "success"  # type: ignore[union-attr]


def test_kept_tasks_no_claim_takes_go_back_to_the_queue(
    alice: Caller, ep_fn: tuple[str, str], client: TestClient, ctx: ServiceContext,
) -> None:
    ep, fn = ep_fn
    assert _claim(alice, ep) == []
    ctx.lifecycle.unclaimed.keep = 0.2
    handed = _handed_elsewhere(ctx, ep, fn, alice.user_id)
    client.portal.call(ctx.lifecycle.unclaimed.add, ep, "s1", handed)  # type: ignore[union-attr]
    task_id = handed.tasks[0].id
    deadline = time.monotonic() + 10
    while ctx.store.get_task(task_id).status != QUEUED:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "never released"
        time.sleep(0.05)
    assert _claim(alice, ep) == [task_id]  # from the queue now
