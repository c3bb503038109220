"""Results pushed down the SDK's channel to the submission that asked to follow them
(``farcall_service.following``), and what stops the pushes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from farcall_service import admin, following
from farcall_service.channel import NOT_READING, Opened
from farcall_service.storage import schema
from farcall_service.storage.interface import Task
from farcall_testkit.service import Caller, hold_next_call, payload, receive, sdk_channel
from starlette.websockets import WebSocketDisconnect


def follow(ws: Any, ep: str, fn: str, *args: int) -> dict[str, Any]:
    ws.send_text(json.dumps({"op": "submit", "endpoint_id": ep, "follow": True,
                             "tasks": {fn: [payload(a) for a in args]}}))
    return receive(ws)


def run_one(caller: Caller, ep: str, task_id: str, result: str) -> None:
    """Act as the endpoint: claim the task and report its result."""
    claimed = caller.post(f"/farcall/v1/endpoints/{ep}/claim",
                          json={"session": "s1", "wait": 0}).json()["tasks"]
    assert [t["task_id"] for t in claimed] == [task_id]
    reported = caller.post(f"/farcall/v1/endpoints/{ep}/results", json={
        "session": "s1", "results": [{"task_id": task_id, "status": "success",
                                      "result": result}]})
    assert reported.status_code == 200, reported.text


def test_a_followed_task_has_its_result_pushed(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    with sdk_channel(alice) as ws:
        answer = follow(ws, ep, fn, 3)
        [task] = answer["tasks"][fn]
        assert answer["following"] is True and answer["results"] == {}
        run_one(alice, ep, task, "11\n9")
        push = receive(ws)  # no request sent for it
        assert push["push"] == "results"
        assert push["results"][task]["status"] == "success"
        assert push["results"][task]["result"] == "11\n9"
        # Nothing else is owed: the channel answers the next request next.
        ws.send_text(json.dumps({"op": "wait", "task_ids": [task], "timeout": 0}))
        assert receive(ws)["results"][task]["result"] == "11\n9"
        assert alice.client.app.state.farcall.lifecycle.broker.results.listening(alice.user_id) == 1
    ctx = alice.client.app.state.farcall
    deadline = time.monotonic() + 20
    results = ctx.lifecycle.broker.results
    while results.listening(alice.user_id):  # the channel closed: it stops listening
        assert time.monotonic() < deadline, "a closed channel still listens for results"
        time.sleep(0.01)


def test_without_follow_nothing_is_pushed(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    with sdk_channel(alice) as ws:
        ws.send_text(json.dumps({"op": "submit", "endpoint_id": ep,
                                 "tasks": {fn: [payload(3)]}}))
        answer = receive(ws)
        assert "following" not in answer
        [task] = answer["tasks"][fn]
        run_one(alice, ep, task, "11\n9")
        ws.send_text(json.dumps({"op": "wait", "task_ids": [task], "timeout": 5}))
        assert receive(ws) == {"response": "batch", "results": {
            task: alice.get(f"/v2/tasks/{task}").json()}}


def test_a_result_in_before_the_submission_commits_comes_with_its_answer(
    alice: Caller, ep_fn: tuple[str, str], monkeypatch: Any
) -> None:
    """A waiting claim is handed the task before the submission's transaction; its
    result is told at once, committed after the submission, and answered with it."""
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    entered, release = hold_next_call(monkeypatch, ctx.store, "submit")
    claims: list[Any] = []
    claiming = threading.Thread(target=lambda: claims.append(alice.post(
        f"/farcall/v1/endpoints/{ep}/claim", json={"session": "s1", "wait": 20})))
    claiming.start()
    reports: list[Any] = []
    with sdk_channel(alice) as ws:
        while not ctx.lifecycle.broker.tasks.offering(ep):  # the claim waits, offering to take work
            threading.Event().wait(0.01)
        ws.send_text(json.dumps({"op": "submit", "endpoint_id": ep, "follow": True,
                                 "tasks": {fn: [payload(3)]}}))
        assert entered.wait(20)
        claiming.join(20)
        [task] = [t["task_id"] for t in claims[0].json()["tasks"]]  # before the commit
        reporting = threading.Thread(target=lambda: reports.append(alice.post(
            f"/farcall/v1/endpoints/{ep}/results", json={"session": "s1", "results": [
                {"task_id": task, "status": "success", "result": "11\n9"}]})))
        reporting.start()
        try:
            while task not in ctx.lifecycle.memory.records([task]):  # told, not committed
                threading.Event().wait(0.01)
            assert reporting.is_alive()  # acknowledged only after both commits
        finally:
            release.set()
        answer = receive(ws)
        reporting.join(20)
    assert answer["tasks"][fn] == [task] and answer["following"] is True
    assert answer["results"][task]["result"] == "11\n9"
    assert reports[0].json() == {"acknowledged": [task], "rejected": []}
    assert ctx.store.get_task(task).status == "success"


def test_a_deleted_endpoints_tasks_are_pushed_as_failed(
    alice: Caller, ep_fn: tuple[str, str]
) -> None:
    ep, fn = ep_fn
    with sdk_channel(alice) as ws:
        [task] = follow(ws, ep, fn, 3)["tasks"][fn]
        assert alice.delete(f"/v2/endpoints/{ep}").status_code == 200
        push = receive(ws)
        assert push["results"][task]["status"] == "failed"


def test_only_so_many_tasks_are_followed(
    alice: Caller, ep_fn: tuple[str, str], monkeypatch: Any
) -> None:
    ep, fn = ep_fn
    monkeypatch.setattr(following, "MAX_FOLLOWED", 2)
    with sdk_channel(alice) as ws:
        assert follow(ws, ep, fn, 1, 2)["following"] is True
        answer = follow(ws, ep, fn, 3)
        assert "following" not in answer  # the SDK waits for this one as it would


def test_a_channel_whose_token_is_gone_is_closed_rather_than_pushed_to(
    alice: Caller, ep_fn: tuple[str, str]
) -> None:
    ep, fn = ep_fn
    store = alice.client.app.state.farcall.store
    with sdk_channel(alice) as ws:
        [task] = follow(ws, ep, fn, 3)["tasks"][fn]
        claimed = alice.post(f"/farcall/v1/endpoints/{ep}/claim",
                             json={"session": "s1", "wait": 0}).json()["tasks"]
        assert len(claimed) == 1
        with store.engine.begin() as conn:
            conn.execute(sa.delete(schema.tokens))
        endpoint = Caller(alice.client, alice.user_id, admin.create_token(store, "alice"))
        reported = endpoint.post(f"/farcall/v1/endpoints/{ep}/results", json={
            "session": "s1", "results": [{"task_id": task, "status": "success",
                                          "result": "11\n9"}]})
        assert reported.status_code == 200
        with pytest.raises(WebSocketDisconnect) as closed:
            receive(ws)
        assert closed.value.code == following.TOKEN_GONE


def test_a_client_that_does_not_read_its_pushes_is_closed() -> None:
    """Pushes that pile up unsent beyond the limit close the channel (1013)."""

    class Stuck:
        url = type("Url", (), {"path": "/farcall/v1/channel"})()

        def __init__(self) -> None:
            self.closed_with: int | None = None

        async def send_text(self, _text: str) -> None:
            await asyncio.Event().wait()  # the client never reads: the send never ends

        async def close(self, code: int) -> None:
            self.closed_with = code

    async def scenario() -> tuple[Opened, Stuck, list[str]]:
        websocket = Stuck()
        channel = Opened(websocket, "token", limit=1000)  # type: ignore[arg-type]
        gone: list[str] = []
        channel.on_close(lambda: gone.append("closed"))
        for _ in range(9):  # about 100 characters each: under the limit
            channel.push({"push": "results", "results": {"t": "x" * 60}})
        await asyncio.sleep(0.01)
        assert websocket.closed_with is None and not channel.closed
        channel.push({"push": "results", "results": {"t": "x" * 200}})
        await asyncio.sleep(0.01)
        return channel, websocket, gone

    channel, websocket, gone = asyncio.run(scenario())
    assert channel.closed and websocket.closed_with == NOT_READING and gone == ["closed"]


def test_a_result_another_process_tells_before_the_commit_here_comes_with_the_answer(
    alice: Caller, ep_fn: tuple[str, str], monkeypatch: Any
) -> None:
    """With other processes on the database, the claim's process tells a result it
    was handed before the submission's commit here is through: the channel keeps it
    (the task was accepted here) and answers the submission with it."""
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    monkeypatch.setattr(ctx.lifecycle.broker, "single_process", False)  # others share it
    with sdk_channel(alice) as ws:
        assert follow(ws, ep, fn, 1)["following"] is True  # the channel listens from now on
        held: list[str] = []
        begun, release = threading.Event(), threading.Event()
        submit = ctx.store.submit

        def held_submit(*args: Any, **kwargs: Any) -> Any:
            held.extend(task.id for _eid, task in args[2])
            begun.set()
            assert release.wait(60)
            return submit(*args, **kwargs)

        monkeypatch.setattr(ctx.store, "submit", held_submit)
        ws.send_text(json.dumps({"op": "submit", "endpoint_id": ep, "follow": True,
                                 "tasks": {fn: [payload(2)]}}))
        assert begun.wait(20)
        [task_id] = held
        # As the broker delivers another process's notification, before the commit.
        told = Task(task_id, alice.user_id, fn, ep, "group", "success", time.time(), "4",
                    completion_t=time.time())
        ctx.lifecycle.broker.results.notify(alice.user_id, [told])
        release.set()
        answer = receive(ws)
    assert answer["tasks"][fn] == [task_id] and answer["following"] is True
    assert answer["results"][task_id]["result"] == "4"
