"""Every process takes every request: a task submitted through one process runs on an
endpoint connected to another, and its result reaches waiters held by a third, pushed
(no polling sleeps: each hears within a second of the result being recorded)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import scale_kit as kit
from farcall import Client, Executor
from farcall_testkit.scaled import Ledger, ScaledStack

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

    [(completed,)] = Ledger(scaled.db_url).fetch(
        "SELECT completion_t FROM tasks WHERE id = :t", t=task_id)
    assert set(heard) == {"client wait", "http wait", "channel"}, heard
    delays = {name: at - completed for name, (at, _value) in heard.items()}
    assert {value for _at, value in heard.values()} == {49}, heard
    assert all(delay < PROMPT_S for delay in delays.values()), delays
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
    assert max(delays) < PROMPT_S, delays
    kit.record("cross-process executor", futures=len(futures), max_delay_s=max(delays))
