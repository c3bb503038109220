"""``POST /farcall/v1/tasks/wait`` and the serialized exception of failed tasks."""

from __future__ import annotations

import threading
from typing import Any

from farcall.serialize import Serializer
from farcall_testkit.service import Caller, assert_error, hold_next_call


def test_wait_answers_when_a_result_is_recorded(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    first, second = alice.submit(ep, fn, 3, count=2).json()["tasks"][fn]
    alice.claim(ep)
    answers: list[Any] = []
    waiting = threading.Thread(target=lambda: answers.append(alice.post(
        "/farcall/v1/tasks/wait", json={"task_ids": [first, second], "timeout": 60})))
    waiting.start()
    alice.report(ep, [{"task_id": first, "status": "success", "result": "11\n9"}])
    waiting.join(20)  # far below the wait's own timeout: only a wake-up ends it in time
    assert not waiting.is_alive(), "the wait was not woken by the recorded result"
    body = answers[0].json()
    assert set(body["results"]) == {first}
    assert body["results"][first]["result"] == "11\n9"


def test_wait_times_out_with_nothing_and_hides_other_users_tasks(
    alice: Caller, make_caller: Any, ep_fn: tuple[str, str]
) -> None:
    ep, fn = ep_fn
    task = alice.submit(ep, fn, 3).json()["tasks"][fn][0]
    answer = alice.post("/farcall/v1/tasks/wait", json={"task_ids": [task], "timeout": 0.2})
    assert answer.status_code == 200 and answer.json()["results"] == {}
    alice.claim(ep)
    alice.report(ep, [{"task_id": task, "status": "success", "result": "11\n9"}])
    mallory = make_caller("mallory")
    stolen = mallory.post("/farcall/v1/tasks/wait", json={"task_ids": [task], "timeout": 0.2})
    assert stolen.status_code == 200 and stolen.json()["results"] == {}
    assert_error(alice.post("/farcall/v1/tasks/wait", json={"task_ids": []}), 422)
    assert_error(alice.post("/farcall/v1/tasks/wait", json={"task_ids": ["nope"]}), 422)


def test_wait_on_unfinished_tasks_is_answered_from_memory(
    alice: Caller, make_caller: Any, ep_fn: tuple[str, str]
) -> None:
    """Tasks accepted here and not reported are known to be unfinished: the wait
    starts without reading the database, and is still answered by the report; once
    reported, they are answered from memory. Tasks of another user are never taken
    for the caller's."""
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    task = alice.submit(ep, fn, 3).json()["tasks"][fn][0]
    assert ctx.lifecycle.memory.look([task], alice.user_id) == []
    mallory = make_caller("mallory")
    assert ctx.lifecycle.memory.look([task], mallory.user_id) is None
    stolen = mallory.post("/farcall/v1/tasks/wait", json={"task_ids": [task], "timeout": 0.2})
    assert stolen.status_code == 200 and stolen.json()["results"] == {}
    alice.claim(ep)
    answers: list[Any] = []
    waiting = threading.Thread(target=lambda: answers.append(alice.post(
        "/farcall/v1/tasks/wait", json={"task_ids": [task], "timeout": 60})))
    waiting.start()
    alice.report(ep, [{"task_id": task, "status": "success", "result": "11\n9"}])
    waiting.join(20)
    assert not waiting.is_alive(), "the wait was not woken by the recorded result"
    assert answers[0].json()["results"][task]["result"] == "11\n9"
    remembered = ctx.lifecycle.memory.look([task], alice.user_id)
    assert remembered is not None and remembered[0].result == "11\n9"
    again = alice.post("/farcall/v1/tasks/wait", json={"task_ids": [task], "timeout": 60})
    assert again.json()["results"][task]["result"] == "11\n9"  # answered from memory


def test_deleting_the_endpoint_ends_waits_on_its_tasks(
    alice: Caller, ep_fn: tuple[str, str]
) -> None:
    ep, fn = ep_fn
    task = alice.submit(ep, fn, 3).json()["tasks"][fn][0]
    answers: list[Any] = []
    waiting = threading.Thread(target=lambda: answers.append(alice.post(
        "/farcall/v1/tasks/wait", json={"task_ids": [task], "timeout": 60})))
    waiting.start()
    assert alice.delete(f"/v2/endpoints/{ep}").status_code == 200
    waiting.join(20)
    assert not waiting.is_alive(), "the wait was not woken by the deletion"
    assert answers[0].json()["results"][task]["status"] == "failed"


def test_failed_task_keeps_its_serialized_exception(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    task = alice.submit(ep, fn, 3).json()["tasks"][fn][0]
    alice.claim(ep)
    data = Serializer().serialize(KeyError("lost"))
    alice.report(ep, [{"task_id": task, "status": "failed", "exception": "Traceback ...",
                        "exception_data": data}])
    doc = alice.get(f"/v2/tasks/{task}").json()
    assert doc["exception"] == "Traceback ..."
    rebuilt = Serializer().deserialize(doc["exception_data"])
    assert isinstance(rebuilt, KeyError) and rebuilt.args == ("lost",)


# -- results told before they commit ------------------------------------------------


def test_a_result_is_told_while_its_commit_is_on_its_way(
    alice: Caller, ep_fn: tuple[str, str], monkeypatch: Any
) -> None:
    """Waits and reads have the result the moment the report arrives; the endpoint
    is acknowledged only once it has committed, so it keeps the result until then."""
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    task = alice.submit(ep, fn, 3).json()["tasks"][fn][0]
    alice.claim(ep)
    started, release = hold_next_call(monkeypatch, ctx.store, "record_reports")
    reporting = threading.Thread(target=alice.report, args=(
        ep, [{"task_id": task, "status": "success", "result": "11\n9"}]))
    reporting.start()
    try:
        assert started.wait(20)
        waited = alice.post("/farcall/v1/tasks/wait", json={"task_ids": [task], "timeout": 5})
        assert waited.json()["results"][task]["result"] == "11\n9"
        assert alice.get(f"/v2/tasks/{task}").json()["result"] == "11\n9"
        batch = alice.post("/v2/batch_status", json={"task_ids": [task]}).json()
        assert batch["results"][task]["status"] == "success"
        assert ctx.store.get_task(task).status == "running"  # not committed yet...
        assert reporting.is_alive()  # ...so not acknowledged either
    finally:
        release.set()
        reporting.join(20)
    committed = ctx.store.get_task(task)
    assert committed.status == "success" and committed.result == "11\n9"
    assert ctx.lifecycle.reports_in_flight == {}


def test_a_result_whose_commit_fails_is_unfinished_again(
    alice: Caller, ep_fn: tuple[str, str], monkeypatch: Any
) -> None:
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    task = alice.submit(ep, fn, 3).json()["tasks"][fn][0]
    alice.claim(ep)

    def disk_full(*args: Any, **kwargs: Any) -> Any:
        raise OSError("database or disk is full")

    with monkeypatch.context() as patch:
        patch.setattr(ctx.store, "record_reports", disk_full)
        failed = alice.post(f"/farcall/v1/endpoints/{ep}/results", json={
            "session": "s1", "results": [{"task_id": task, "status": "success",
                                          "result": "11\n9"}]})
        assert failed.status_code == 500
    waited = alice.post("/farcall/v1/tasks/wait", json={"task_ids": [task], "timeout": 0.2})
    assert waited.json()["results"] == {}
    assert alice.get(f"/v2/tasks/{task}").json()["status"] == "running"
    alice.report(ep, [{"task_id": task, "status": "success", "result": "11\n9"}])  # again
    waited = alice.post("/farcall/v1/tasks/wait", json={"task_ids": [task], "timeout": 5})
    assert waited.json()["results"][task]["result"] == "11\n9"


def test_a_second_result_for_a_told_task_commits_after_the_first(
    alice: Caller, ep_fn: tuple[str, str], monkeypatch: Any
) -> None:
    """What the waits were told is what the database keeps: a second report of the
    same task (a task run twice) waits for the first one's commit."""
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    task = alice.submit(ep, fn, 3).json()["tasks"][fn][0]
    alice.claim(ep)
    first_started, release = hold_next_call(monkeypatch, ctx.store, "record_reports")
    reports = [threading.Thread(target=alice.report, args=(
        ep, [{"task_id": task, "status": "success", "result": result}]))
        for result in ("11\n9", "11\n10")]
    reports[0].start()
    try:
        assert first_started.wait(20)
        reports[1].start()
        reports[1].join(0.5)
        assert reports[1].is_alive(), "the second report did not wait for the first"
    finally:
        release.set()
        for thread in reports:
            thread.join(20)
    assert ctx.store.get_task(task).result == "11\n9"
    waited = alice.post("/farcall/v1/tasks/wait", json={"task_ids": [task], "timeout": 5})
    assert waited.json()["results"][task]["result"] == "11\n9"
