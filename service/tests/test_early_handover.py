"""A waiting claim gets its tasks before their commit is done; results wait for it.

Real HTTP on loopback against uvicorn in this process, with the store's submission
held back so that the order of events is certain.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from farcall_service import admin
from farcall_service.app import create_app
from farcall_service.settings import Settings
from farcall_service.testing import AppServer, Caller


class HeldSubmissions:
    """Wraps ``store.submit``: each call waits for ``release`` and then either
    commits or, with ``fail`` set, raises as a failed commit would."""

    def __init__(self, store: Any) -> None:
        self.real = store.submit
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail = False
        store.submit = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        assert self.release.wait(30), "the test never released the submission"
        if self.fail:
            raise RuntimeError("the disk is full")
        return self.real(*args, **kwargs)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Any, HeldSubmissions]]:
    app = create_app(Settings(home=tmp_path, rate_limit=0))
    ctx = app.state.farcall
    admin.add_user(ctx.store, "a")
    token = admin.create_token(ctx.store, "a")
    held = HeldSubmissions(ctx.store)
    with AppServer(app) as server:
        try:
            yield server.url, token, ctx, held
        finally:
            held.release.set()  # a failed test must not leave a request held


def caller(url: str, token: str) -> Caller:
    return Caller(httpx.Client(base_url=url, timeout=60), "", token)


def test_results_for_tasks_handed_over_before_their_commit_wait_for_it(served: Any) -> None:
    url, token, ctx, held = served
    setup = caller(url, token)
    ep, fn = setup.register_endpoint(), setup.register_function()
    with ThreadPoolExecutor(3) as pool:
        claimed = pool.submit(caller(url, token).post, f"/farcall/v1/endpoints/{ep}/claim",
                              json={"session": "s1", "wait": 20})
        deadline = time.monotonic() + 10
        while ep not in ctx.notifier.waiting_keys():  # the claim waits
            assert time.monotonic() < deadline
            time.sleep(0.01)
        submitted = pool.submit(setup.submit, ep, fn, 3)
        tasks = claimed.result(10).json()["tasks"]
        assert held.entered.wait(10) and not submitted.done()  # handed over, not committed
        [task] = tasks
        reported = pool.submit(caller(url, token).post, f"/farcall/v1/endpoints/{ep}/results",
                               json={"session": "s1", "results": [
                                   {"task_id": task["task_id"], "status": "success",
                                    "result": "00\ngAVLCS4=\n"}]})
        time.sleep(0.5)
        assert not reported.done()  # recording it now would find no task
        held.release.set()
        answer = submitted.result(10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["tasks"][fn] == [task["task_id"]]
        assert reported.result(10).json() == {"acknowledged": [task["task_id"]],
                                              "rejected": []}
    assert setup.get(f"/v2/tasks/{task['task_id']}").json()["status"] == "success"


def test_a_commit_that_fails_after_the_hand_over_fails_the_submission(served: Any) -> None:
    url, token, ctx, held = served
    setup = caller(url, token)
    ep, fn = setup.register_endpoint(), setup.register_function()
    held.fail = True
    with ThreadPoolExecutor(2) as pool:
        claimed = pool.submit(caller(url, token).post, f"/farcall/v1/endpoints/{ep}/claim",
                              json={"session": "s1", "wait": 20})
        deadline = time.monotonic() + 10
        while ep not in ctx.notifier.waiting_keys():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        submitted = pool.submit(setup.submit, ep, fn, 3)
        [task] = claimed.result(10).json()["tasks"]
        held.release.set()
        answer = submitted.result(10)
    assert answer.status_code == 500
    assert answer.json()["code"] == "INTERNAL_ERROR"  # no detail of the failure leaks
    # A fresh connection: the service closes one that ended in an internal error.
    refused = caller(url, token).post(f"/farcall/v1/endpoints/{ep}/results", json={
        "session": "s1", "results": [{"task_id": task["task_id"], "status": "success",
                                      "result": "00\ngAVLCS4=\n"}]})
    assert refused.json() == {"acknowledged": [], "rejected": [task["task_id"]]}
