"""``POST /farcall/v1/tasks/wait`` and the serialized exception of failed tasks."""

from __future__ import annotations

import threading
from typing import Any

from farcall.serialize import Serializer
from farcall_service.testing import Caller, assert_error


def claim(caller: Caller, ep: str) -> list[dict[str, Any]]:
    answer = caller.post(f"/farcall/v1/endpoints/{ep}/claim", json={"session": "s1"})
    assert answer.status_code == 200, answer.text
    return answer.json()["tasks"]


def report(caller: Caller, ep: str, results: list[dict[str, Any]]) -> None:
    answer = caller.post(f"/farcall/v1/endpoints/{ep}/results",
                         json={"session": "s1", "results": results})
    assert answer.status_code == 200, answer.text


def test_wait_answers_when_a_result_is_recorded(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    first, second = alice.submit(ep, fn, 3, count=2).json()["tasks"][fn]
    claim(alice, ep)
    answers: list[Any] = []
    waiting = threading.Thread(target=lambda: answers.append(alice.post(
        "/farcall/v1/tasks/wait", json={"task_ids": [first, second], "timeout": 60})))
    waiting.start()
    report(alice, ep, [{"task_id": first, "status": "success", "result": "11\n9"}])
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
    claim(alice, ep)
    report(alice, ep, [{"task_id": task, "status": "success", "result": "11\n9"}])
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
    assert ctx.unfinished.look([task], alice.user_id) == []
    mallory = make_caller("mallory")
    assert ctx.unfinished.look([task], mallory.user_id) is None
    stolen = mallory.post("/farcall/v1/tasks/wait", json={"task_ids": [task], "timeout": 0.2})
    assert stolen.status_code == 200 and stolen.json()["results"] == {}
    claim(alice, ep)
    answers: list[Any] = []
    waiting = threading.Thread(target=lambda: answers.append(alice.post(
        "/farcall/v1/tasks/wait", json={"task_ids": [task], "timeout": 60})))
    waiting.start()
    report(alice, ep, [{"task_id": task, "status": "success", "result": "11\n9"}])
    waiting.join(20)
    assert not waiting.is_alive(), "the wait was not woken by the recorded result"
    assert answers[0].json()["results"][task]["result"] == "11\n9"
    remembered = ctx.unfinished.look([task], alice.user_id)
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
    claim(alice, ep)
    data = Serializer().serialize(KeyError("lost"))
    report(alice, ep, [{"task_id": task, "status": "failed", "exception": "Traceback ...",
                        "exception_data": data}])
    doc = alice.get(f"/v2/tasks/{task}").json()
    assert doc["exception"] == "Traceback ..."
    rebuilt = Serializer().deserialize(doc["exception_data"])
    assert isinstance(rebuilt, KeyError) and rebuilt.args == ("lost",)
