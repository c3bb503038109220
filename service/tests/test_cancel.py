"""Cancelling tasks through the service: ``POST /farcall/v1/tasks/cancel`` and the SDK
channel's ``cancel``; what waits, followers, official readers and endpoints see."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from farcall_testkit.service import Caller, assert_error, payload, receive, sdk_channel


def cancel(caller: Caller, *task_ids: str) -> dict[str, dict[str, Any]]:
    answer = caller.post("/farcall/v1/tasks/cancel", json={"task_ids": list(task_ids)})
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def submit(caller: Caller, ep: str, fn: str, count: int = 1) -> list[str]:
    answer = caller.submit(ep, fn, 3, count=count)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["tasks"][fn])


def test_a_cancelled_queued_task_never_reaches_its_endpoint(
        alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    ids = submit(alice, ep, fn, count=5)
    answers = cancel(alice, *ids[:4])
    assert {a["outcome"] for a in answers.values()} == {"cancelled"}
    assert all(a["status"] == "cancelled" for a in answers.values())
    assert "never run" in answers[ids[0]]["message"]
    assert [t["task_id"] for t in alice.claim(ep, max_tasks=10)] == [ids[4]]


def test_official_readers_see_failed_with_a_cancel_text_and_farcall_sees_cancelled(
        alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    (task,) = submit(alice, ep, fn)
    cancel(alice, task)
    doc = alice.get(f"/v2/tasks/{task}").json()
    assert doc["status"] == "failed" and doc["cancelled"] is True
    assert "cancelled by alice" in doc["exception"]
    assert doc["completion_t"] is not None
    batch = alice.post("/v2/batch_status", json={"task_ids": [task]}).json()["results"]
    assert batch[task]["status"] == "failed"
    waited = alice.post("/farcall/v1/tasks/wait", json={"task_ids": [task], "timeout": 0})
    assert waited.json()["results"][task]["status"] == "cancelled"


def test_a_cancel_after_the_result_is_a_no_op_that_says_so(
        alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    (task,) = submit(alice, ep, fn)
    alice.claim(ep)
    alice.report(ep, [{"task_id": task, "status": "success", "result": "9"}])
    answer = cancel(alice, task)[task]
    assert (answer["outcome"], answer["status"]) == ("already finished", "success")
    assert "nothing changed" in answer["message"]
    assert alice.get(f"/v2/tasks/{task}").json()["result"] == "9"
    again = cancel(alice, task)[task]  # still so, however often
    assert again["outcome"] == "already finished"


def test_another_user_s_and_unknown_tasks_read_as_not_found(
        alice: Caller, ep_fn: tuple[str, str], make_caller: Any) -> None:
    ep, fn = ep_fn
    (task,) = submit(alice, ep, fn)
    bob = make_caller("bob")
    unknown = str(uuid.uuid4())
    answers = cancel(bob, task, unknown)
    assert {a["outcome"] for a in answers.values()} == {"not found"}
    assert answers[task]["status"] is None
    assert alice.get(f"/v2/tasks/{task}").json()["status"] == "waiting-for-ep"
    assert [t["task_id"] for t in alice.claim(ep)] == [task]


def test_a_running_task_s_waiting_claim_is_told_at_once_and_its_late_report_is_not_kept(
        alice: Caller, ep_fn: tuple[str, str], ctx: Any) -> None:
    ep, fn = ep_fn
    (task,) = submit(alice, ep, fn)
    assert [t["task_id"] for t in alice.claim(ep)] == [task]
    usage = ctx.store.usage(alice.user_id)
    answers: list[Any] = []
    waiting = threading.Thread(target=lambda: answers.append(alice.post(
        f"/farcall/v1/endpoints/{ep}/claim",
        json={"session": "s1", "wait": 60}).json()))
    waiting.start()
    deadline = threading.Event()
    while not ctx.lifecycle.broker.tasks.has_waiters(ep):  # the claim waits
        assert not deadline.wait(0.01)
    answer = cancel(alice, task)[task]
    assert answer["outcome"] == "cancelled"
    assert "is told to stop it" in answer["message"]
    waiting.join(30)
    assert answers == [{"tasks": [], "cancel": [task]}]
    receipt = alice.report(ep, [{"task_id": task, "status": "failed",
                                 "exception": "the task was cancelled"}])
    assert receipt == {"acknowledged": [task], "rejected": []}
    doc = alice.get(f"/v2/tasks/{task}").json()
    assert "cancelled by alice" in doc["exception"]
    tasks, chars = ctx.store.usage(alice.user_id)
    assert (tasks, chars) == (usage[0] - 1, usage[1] + len(doc["exception"]))
    assert alice.claim(ep, wait=0) == []  # told once


def test_a_claim_of_no_task_takes_only_the_cancels(
        alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    running, queued = submit(alice, ep, fn, count=2)
    alice.claim(ep, max_tasks=1)
    cancel(alice, running)
    answer = alice.post(f"/farcall/v1/endpoints/{ep}/claim",
                        json={"session": "s1", "max_tasks": 0, "wait": 5}).json()
    assert answer == {"tasks": [], "cancel": [running]}
    assert [t["task_id"] for t in alice.claim(ep)] == [queued]


def test_the_sdk_channel_cancels_and_pushes_the_cancelled_task_to_its_follower(
        alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    with sdk_channel(alice) as ws:
        ws.send_text(json.dumps({"op": "submit", "endpoint_id": ep, "follow": True,
                                 "tasks": {fn: [payload(1)]}}))
        (task,) = receive(ws)["tasks"][fn]
        ws.send_text(json.dumps({"op": "cancel", "task_ids": [task]}))
        first, second = receive(ws), receive(ws)
        push, answer = (first, second) if "push" in first else (second, first)
        assert answer["results"][task]["outcome"] == "cancelled"
        assert push["results"][task]["status"] == "cancelled"
        assert "cancelled by alice" in push["results"][task]["exception"]


def test_a_wait_returns_a_task_the_moment_it_is_cancelled(
        alice: Caller, ep_fn: tuple[str, str], ctx: Any) -> None:
    ep, fn = ep_fn
    (task,) = submit(alice, ep, fn)
    got: list[Any] = []
    waiting = threading.Thread(target=lambda: got.append(alice.post(
        "/farcall/v1/tasks/wait", json={"task_ids": [task], "timeout": 60}).json()))
    waiting.start()
    stop = threading.Event()
    while not ctx.lifecycle.broker.results.has_waiters(alice.user_id):  # it waits
        assert not stop.wait(0.01) and not got
    cancel(alice, task)
    waiting.join(30)
    assert got[0]["results"][task]["status"] == "cancelled"


@pytest.mark.parametrize("body", [{"task_ids": []}, {"task_ids": ["nope"]}, {}])
def test_a_cancel_without_task_ids_is_refused(alice: Caller, body: Any) -> None:
    assert_error(alice.post("/farcall/v1/tasks/cancel", json=body), 422)


def test_more_tasks_than_a_submission_takes_are_refused(alice: Caller, ctx: Any) -> None:
    ids = [str(uuid.uuid4()) for _ in range(ctx.settings.max_tasks_per_submission + 1)]
    assert_error(alice.post("/farcall/v1/tasks/cancel", json={"task_ids": ids}), 413,
                 "TOO_MANY_TASKS")


def test_a_cancel_needs_a_caller(client: Any) -> None:
    answer = client.post("/farcall/v1/tasks/cancel", json={"task_ids": [str(uuid.uuid4())]})
    assert_error(answer, 401)
