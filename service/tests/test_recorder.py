"""When results commit (``farcall_service.recording``) and when a claim is handed the
tasks of a submission that has not committed yet (``farcall_service.accepting``)."""

from __future__ import annotations

import threading
import time
from typing import Any

from farcall_service import recording
from farcall_service.settings import Settings
from farcall_testkit.service import Caller, hold_next_call


def claim(caller: Caller, ep: str, session: str = "s1", wait: float = 0) -> list[str]:
    answer = caller.post(f"/farcall/v1/endpoints/{ep}/claim",
                         json={"session": session, "wait": wait})
    assert answer.status_code == 200, answer.text
    return [task["task_id"] for task in answer.json()["tasks"]]


def report(caller: Caller, ep: str, task_id: str, session: str = "s1") -> Any:
    return caller.post(f"/farcall/v1/endpoints/{ep}/results", json={
        "session": session, "results": [{"task_id": task_id, "status": "success",
                                         "result": "11\n9"}]})


def in_thread(call: Any) -> tuple[threading.Thread, list[Any]]:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(call()))
    thread.start()
    return thread, box


def test_a_report_commits_with_the_next_submission(
    alice: Caller, ep_fn: tuple[str, str], monkeypatch: Any
) -> None:
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    monkeypatch.setattr(ctx.lifecycle.recorder, "delay", 30.0)  # no commit of its own in this test
    [task] = alice.submit(ep, fn, 3).json()["tasks"][fn]
    assert claim(alice, ep) == [task]
    folded: list[int] = []
    submit = ctx.store.submit

    def counting_submit(*args: Any, **kwargs: Any) -> Any:
        folded.append(len(args[6]) if len(args) > 6 else len(kwargs.get("reports", ())))
        return submit(*args, **kwargs)

    monkeypatch.setattr(ctx.store, "submit", counting_submit)
    reporting, answers = in_thread(lambda: report(alice, ep, task))
    while not ctx.lifecycle.memory.records([task]):  # told, waiting for a commit to share
        time.sleep(0.01)
    time.sleep(0.1)
    assert reporting.is_alive() and ctx.store.get_task(task).status == "running"
    assert alice.submit(ep, fn, 4).status_code == 200
    reporting.join(20)
    assert folded == [1]  # the report went with the submission's transaction
    assert answers[0].json() == {"acknowledged": [task], "rejected": []}
    assert ctx.store.get_task(task).status == "success"


def test_a_report_commits_on_its_own_when_no_submission_comes(
    alice: Caller, ep_fn: tuple[str, str]
) -> None:
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    [task] = alice.submit(ep, fn, 3).json()["tasks"][fn]
    assert claim(alice, ep) == [task]
    reporting, answers = in_thread(lambda: report(alice, ep, task))
    reporting.join(20)
    assert not reporting.is_alive(), "the report was never committed"
    assert answers[0].json() == {"acknowledged": [task], "rejected": []}
    assert ctx.store.get_task(task).status == "success"


def test_a_folded_transaction_that_fails_commits_each_write_alone(
    alice: Caller, ep_fn: tuple[str, str], monkeypatch: Any
) -> None:
    """One write's failure is not another's: the submission is tried again without
    the report, which commits in a transaction of its own."""
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    monkeypatch.setattr(ctx.lifecycle.recorder, "delay", 30.0)
    [task] = alice.submit(ep, fn, 3).json()["tasks"][fn]
    assert claim(alice, ep) == [task]
    submit = ctx.store.submit

    def failing_with_reports(*args: Any, **kwargs: Any) -> Any:
        if args[6:] and args[6]:
            raise OSError("disk I/O error")
        return submit(*args, **kwargs)

    monkeypatch.setattr(ctx.store, "submit", failing_with_reports)
    reporting, answers = in_thread(lambda: report(alice, ep, task))
    while not ctx.lifecycle.memory.records([task]):
        time.sleep(0.01)
    submitted = alice.submit(ep, fn, 4)
    reporting.join(20)
    assert submitted.status_code == 200
    [later] = submitted.json()["tasks"][fn]
    assert ctx.store.get_task(later).status == "waiting-for-ep"
    assert answers[0].json() == {"acknowledged": [task], "rejected": []}
    assert ctx.store.get_task(task).status == "success"


def test_a_claim_is_handed_its_task_before_the_submission_commits(
    alice: Caller, ep_fn: tuple[str, str], monkeypatch: Any
) -> None:
    """The result of a handed task commits after the submission, so the database
    never refuses it as unknown."""
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    entered, release = hold_next_call(monkeypatch, ctx.store, "submit")
    claiming, claims = in_thread(lambda: claim(alice, ep, wait=20))
    while not ctx.lifecycle.broker.tasks.offering(ep):
        time.sleep(0.01)
    submitting, submissions = in_thread(lambda: alice.submit(ep, fn, 3))
    assert entered.wait(20)
    claiming.join(20)
    [task] = claims[0]  # handed while the submission waits to commit
    reporting, reports = in_thread(lambda: report(alice, ep, task))
    try:
        time.sleep(0.2)
        assert reporting.is_alive() and submitting.is_alive()
    finally:
        release.set()
    submitting.join(20)
    reporting.join(20)
    assert submissions[0].json()["tasks"][fn] == [task]
    assert reports[0].json() == {"acknowledged": [task], "rejected": []}
    assert ctx.store.get_task(task).status == "success"
    assert ctx.lifecycle.submissions_in_flight == {}


def test_tasks_handed_to_a_session_replaced_meanwhile_are_queued(
    alice: Caller, ep_fn: tuple[str, str], monkeypatch: Any
) -> None:
    """A new session took the endpoint over before the submission committed: the
    tasks its old session was handed go to the queue, where the new one claims them."""
    ep, fn = ep_fn
    ctx = alice.client.app.state.farcall
    entered, release = hold_next_call(monkeypatch, ctx.store, "submit")
    claim(alice, ep, "old")  # the endpoint's session is "old"
    claiming, claims = in_thread(lambda: claim(alice, ep, "old", wait=20))
    while not ctx.lifecycle.broker.tasks.offering(ep):
        time.sleep(0.01)
    submitting, submissions = in_thread(lambda: alice.submit(ep, fn, 3))
    assert entered.wait(20)
    claiming.join(20)
    [task] = claims[0]
    try:
        assert claim(alice, ep, "new") == []  # takes the endpoint over: nothing queued yet
    finally:
        release.set()
    submitting.join(20)
    assert submissions[0].status_code == 200
    assert claim(alice, ep, "new") == [task]


def test_reports_wait_for_a_submission_only_where_the_database_has_one_writer(
    alice: Caller, settings: Settings
) -> None:
    """SQLite takes one writer at a time, so a report waits to share a submission's
    commit; on PostgreSQL it commits at once."""
    ctx = alice.client.app.state.farcall
    sqlite = settings.database_url.startswith("sqlite")
    assert ctx.store.one_writer is sqlite
    assert ctx.lifecycle.recorder.delay == (recording.FOLD_DELAY if sqlite else 0.0)
