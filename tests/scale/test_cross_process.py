"""Every process takes every request: a task submitted through one process runs on an
endpoint connected to another, and its result reaches waiters held by a third, pushed
(no polling sleeps: each hears within a second of the result being recorded)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import scale_kit as kit
from farcall import Client, Executor
from farcall_testkit.scaled import Ledger, ScaledStack
from farcall_testkit.waiting import wait_for

#: Within this long of the result's commit, every waiter has it.
PROMPT_S = 1.0


def slow_square(x):
    import time

    time.sleep(2.0)  # long enough for every waiter to be waiting before it ends
    return x * x


def square_later(x):
    import time

    time.sleep(1.5)
    return x * x


# Sent by value (dill pickles functions of ``__main__`` with their code), so the
# endpoint's workers need nothing of this module.
slow_square.__module__ = square_later.__module__ = "__main__"


def test_a_task_submitted_through_process_1_runs_on_process_2_and_reaches_waiters_on_3(
        scaled: ScaledStack) -> None:
    endpoint = scaled.endpoint("cross", via=1)
    endpoint.start()
    submitter = Client(scaled.url_of(0), token=scaled.token)
    fn = submitter.register_function(slow_square)
    task_id = submitter.run(7, endpoint_id=endpoint.endpoint_id, function_id=fn)

    heard: dict[str, tuple[float, Any]] = {}

    def client_wait() -> None:  # farcall's Client: a wait over its channel, on process 3
        waiter = Client(scaled.url_of(2), token=scaled.token)
        entry = waiter.wait([task_id], timeout=60, progress=False)[task_id]
        heard["client wait"] = (time.time(), entry["result"])

    def http_wait() -> None:  # the long-poll route, on process 3
        api = scaled.api(2)
        answer = api.call("POST", "/farcall/v1/tasks/wait",
                          json={"task_ids": [task_id], "timeout": 30})
        heard["http wait"] = (time.time(), api.result(answer["results"][task_id]))

    def raw_channel() -> None:  # a channel held open on process 3, as any client may
        from websockets.sync.client import connect

        url = scaled.url_of(2).replace("http://", "ws://") + "/farcall/v1/channel"
        with connect(url, additional_headers={"Authorization": f"Bearer {scaled.token}"}
                     ) as channel:
            assert json.loads(channel.recv(timeout=10))["ok"] is True  # admitted
            channel.send(json.dumps({"op": "wait", "task_ids": [task_id], "timeout": 30}))
            answer = json.loads(channel.recv(timeout=40))
        heard["channel"] = (time.time(), scaled.api(2).result(answer["results"][task_id]))

    threads = [threading.Thread(target=f) for f in (client_wait, http_wait, raw_channel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)

    # The waits may be told before the result's commit (it is then on its way).
    ledger = Ledger(scaled.db_url)
    completed = wait_for(lambda: ledger.fetch(
        "SELECT completion_t FROM tasks WHERE id = :t", t=task_id)[0][0], 30,
        "the result's commit")
    assert set(heard) == {"client wait", "http wait", "channel"}, heard
    delays = {name: at - completed for name, (at, _value) in heard.items()}
    assert {value for _at, value in heard.values()} == {49}, heard
    assert all(delay < PROMPT_S for delay in delays.values()), \
        f"{delays}\n{kit.logs(scaled, endpoint)}"
    kit.record("cross-process waiters", **{f"{k} s": v for k, v in delays.items()})


def test_a_farcall_executor_on_process_3_gets_results_from_an_endpoint_on_process_2(
        scaled: ScaledStack) -> None:
    endpoint = scaled.endpoint("cross-executor", via=1)
    endpoint.start()
    client = Client(scaled.url_of(2), token=scaled.token)
    resolved: dict[int, float] = {}
    with Executor(endpoint.endpoint_id, client=client) as executor:
        futures = [executor.submit(square_later, i) for i in range(4)]
        for i, future in enumerate(futures):
            future.add_done_callback(lambda _f, i=i: resolved.__setitem__(i, time.time()))
        assert [f.result(timeout=60) for f in futures] == [0, 1, 4, 9]
    ids = [f.task_id for f in futures]  # type: ignore[attr-defined]
    rows = dict(Ledger(scaled.db_url).fetch(
        "SELECT id, completion_t FROM tasks WHERE id = ANY(:ids)", ids=ids))
    delays = [resolved[i] - rows[task_id] for i, task_id in enumerate(ids)]
    assert max(delays) < PROMPT_S, f"{delays}\n{kit.logs(scaled, endpoint)}"
    kit.record("cross-process executor", futures=len(futures), max_delay_s=max(delays))


def test_results_of_tasks_handed_to_a_claim_are_kept_when_reported_through_another_process(
        scaled: ScaledStack) -> None:
    """A submission hands its tasks to a claim waiting in its own process before its
    commit; the endpoint may report them through another process (its channels land
    where the proxy sends them). Those results must be recorded, not refused as
    unknown (refused, the endpoint drops them and the tasks wait for the requeue)."""
    submitter, reporter = scaled.api(0), scaled.api(1)
    endpoint_id = str(uuid.uuid4())
    submitter.register_endpoint(endpoint_id, "handed")
    fn = kit.register(submitter, square_later)
    outcome = submitter.serializer.serialize(0)
    answers: list[dict[str, Any]] = []

    def claim_then_report() -> None:  # as an endpoint whose two channels differ
        tasks = submitter.call("POST", f"/farcall/v1/endpoints/{endpoint_id}/claim",
                               json={"session": "s1", "max_tasks": 100, "wait": 10})["tasks"]
        answers.append(reporter.call(
            "POST", f"/farcall/v1/endpoints/{endpoint_id}/results",
            json={"session": "s1", "results": [
                {"task_id": t["task_id"], "status": "success", "result": outcome}
                for t in tasks]}))

    waiting = threading.Thread(target=claim_then_report)
    waiting.start()
    time.sleep(1.0)  # the claim waits in process 1
    # Hold the submission's commit back (its transaction waits for this lock), as a
    # busy database does, so the report arrives before the commit, as it can.
    import sqlalchemy as sa

    engine = sa.create_engine(scaled.db_url, poolclass=sa.pool.NullPool)
    ids: list[str] = []
    with engine.connect() as lock:
        lock.exec_driver_sql("BEGIN")
        lock.exec_driver_sql("LOCK TABLE task_groups IN EXCLUSIVE MODE")
        submitting = threading.Thread(target=lambda: ids.extend(
            submitter.submit(endpoint_id, fn, [(i,) for i in range(100)])))
        submitting.start()
        waiting.join(2.0)  # long enough for a claim handed its tasks early to report
        lock.exec_driver_sql("COMMIT")
    engine.dispose()
    submitting.join(30)
    waiting.join(30)
    [answer] = answers
    assert answer["rejected"] == [], f"{len(answer['rejected'])} results refused as unknown"
    assert sorted(answer["acknowledged"]) == sorted(ids)
