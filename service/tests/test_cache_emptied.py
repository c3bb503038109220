"""The lifecycle's memory is a cache: emptied at any point of a task's life
(``TaskLifecycle.forget_cached``), every answer still comes, from the store."""

from __future__ import annotations

import json
import threading
from typing import Any

from farcall_testkit.service import Caller, hold_next_call, payload, receive


def _wait(caller: Caller, ids: list[str], timeout: float) -> dict[str, Any]:
    answer = caller.post("/farcall/v1/tasks/wait", json={"task_ids": ids, "timeout": timeout})
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def test_a_wait_started_before_the_caches_are_emptied_is_answered(
    alice: Caller, ep_fn: tuple[str, str]
) -> None:
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    first, second = alice.submit(ep, fn, 3, count=2).json()["tasks"][fn]
    answers: list[dict[str, Any]] = []
    waiting = threading.Thread(target=lambda: answers.append(_wait(alice, [first, second], 60)))
    waiting.start()
    alice.claim(ep)
    ctx.lifecycle.forget_cached()
    assert ctx.lifecycle.memory.look([first], alice.user_id) is None  # nothing known
    alice.report(ep, [{"task_id": first, "status": "success", "result": "11\n9"}])
    waiting.join(20)  # far below the wait's own timeout: only a wake-up ends it in time
    assert not waiting.is_alive(), "the wait missed a result recorded after the caches went"
    assert answers[0][first]["result"] == "11\n9"
    # A new wait asks the store, which has the one and not yet the other.
    assert set(_wait(alice, [first, second], 0.2)) == {first}
    alice.report(ep, [{"task_id": second, "status": "success", "result": "11\n9"}])
    assert set(_wait(alice, [first, second], 5)) == {first, second}


def test_a_result_told_before_its_commit_survives_the_caches_going(
    alice: Caller, ep_fn: tuple[str, str], monkeypatch: Any
) -> None:
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    task = alice.submit(ep, fn, 3).json()["tasks"][fn][0]
    alice.claim(ep)
    started, release = hold_next_call(monkeypatch, ctx.store, "record_reports")
    reporting = threading.Thread(target=alice.report, args=(
        ep, [{"task_id": task, "status": "success", "result": "11\n9"}]))
    reporting.start()
    try:
        assert started.wait(20)  # told to the memory, not committed
        ctx.lifecycle.forget_cached()
        answers: list[dict[str, Any]] = []
        waiting = threading.Thread(target=lambda: answers.append(_wait(alice, [task], 60)))
        waiting.start()
    finally:
        release.set()
        reporting.join(20)
    waiting.join(20)
    assert not waiting.is_alive(), "the wait missed the commit of a result told before"
    assert answers[0][task]["result"] == "11\n9"
    assert alice.get(f"/v2/tasks/{task}").json()["result"] == "11\n9"


def test_reclaims_read_the_queue_once_the_empty_marks_are_gone(
    alice: Caller, ep_fn: tuple[str, str]
) -> None:
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    body = {"session": "s1", "wait": 0}
    assert alice.post(f"/farcall/v1/endpoints/{ep}/claim", json=body).json()["tasks"] == []
    assert ctx.lifecycle.empty_queues.known_empty(ep, "s1")
    ctx.lifecycle.forget_cached()
    assert not ctx.lifecycle.empty_queues.known_empty(ep, "s1")
    task = alice.submit(ep, fn, 3).json()["tasks"][fn][0]
    claimed = alice.post(f"/farcall/v1/endpoints/{ep}/claim", json=body).json()["tasks"]
    assert [t["task_id"] for t in claimed] == [task]


def test_a_followed_task_is_pushed_when_the_caches_went_before_its_result(
    alice: Caller, ep_fn: tuple[str, str]
) -> None:
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    with alice.client.websocket_connect("/farcall/v1/channel", headers=alice.headers) as ws:
        assert receive(ws)["ok"] is True
        ws.send_text(json.dumps({"op": "submit", "endpoint_id": ep, "follow": True,
                                 "tasks": {fn: [payload(3)]}}))
        answer = receive(ws)
        [task] = answer["tasks"][fn]
        assert answer["following"] is True
        ctx.lifecycle.forget_cached()
        alice.claim(ep)
        alice.report(ep, [{"task_id": task, "status": "success", "result": "11\n9"}])
        push = receive(ws)  # pushed after the commit, from the store's record
        assert push["push"] == "results" and push["results"][task]["result"] == "11\n9"

