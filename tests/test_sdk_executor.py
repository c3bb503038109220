"""``farcall.Executor`` against a real service and a worker."""

from __future__ import annotations

import concurrent.futures
import contextlib
import time

import pytest

pytest.importorskip("farcall_service")

from farcall import Client, Executor, TaskExecutionFailed  # noqa: E402
from farcall_testkit.service import MiniWorker, ServiceProcess, admin  # noqa: E402


def square_or_fail(x):
    if x % 97 == 0:
        raise ValueError(f"no multiples of 97: {x}")
    return x * x


def alice_with_an_endpoint(home, svc):
    """Alice's token, a Client of hers and an endpoint of hers."""
    admin(home, "user", "add", "alice")
    token = admin(home, "token", "create", "alice").splitlines()[-1].strip()
    client = Client(svc.url, token=token)
    eid = client.transport.request(
        "POST", "/v3/endpoints", json={"endpoint_name": "ex"})["endpoint_id"]
    return token, client, eid


@contextlib.contextmanager
def serving(svc, token, eid, max_tasks=100):
    """A worker serving the endpoint while the block runs."""
    worker = MiniWorker(svc.url, token, eid, max_tasks=max_tasks, wait=1.0)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    home = tmp_path_factory.mktemp("executor-home")
    with ServiceProcess(home) as svc:
        yield (svc, *alice_with_an_endpoint(home, svc))


def test_thousand_futures_with_exceptions(setup):
    svc, token, client, eid = setup
    with serving(svc, token, eid, max_tasks=500), Executor(endpoint_id=eid, client=client) as ex:
        futures = [ex.submit(square_or_fail, i) for i in range(1, 1001)]
        done, not_done = concurrent.futures.wait(futures, timeout=120)
        assert not not_done
        assert list(ex.map(square_or_fail, [2, 3, 4])) == [4, 9, 16]
    failures = 0
    for i, future in enumerate(futures, start=1):
        if i % 97 == 0:
            failures += 1
            error = future.exception()
            assert isinstance(error, (ValueError, TaskExecutionFailed))
            assert f"no multiples of 97: {i}" in str(getattr(error, "remote_traceback", error))
        else:
            assert future.result() == i * i
    assert failures == 10
    assert len(ex._function_ids) == 1, "the function is registered once"


def test_shutdown_cancels_what_has_not_run(setup):
    _svc, _token, client, eid = setup
    ex = Executor(endpoint_id=eid, client=client)
    futures = [ex.submit(square_or_fail, i) for i in range(20)]  # no worker: nothing runs
    ex.shutdown(wait=True, cancel_futures=True)
    assert all(f.cancelled() for f in futures)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(square_or_fail, 1)


def sent(future, timeout: float) -> bool:
    """Whether ``future``'s task reached the service (its id is known) in time."""
    deadline = time.monotonic() + timeout
    while not hasattr(future, "task_id"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_results_are_pushed_not_asked_for(setup, monkeypatch):
    svc, token, client, eid = setup
    asked = []
    monkeypatch.setattr(client, "wait_any", lambda *a, **kw: asked.append(a) or {})
    with serving(svc, token, eid), Executor(endpoint_id=eid, client=client) as ex:
        futures = [ex.submit(square_or_fail, i) for i in range(1, 301)]
        done, not_done = concurrent.futures.wait(futures, timeout=60)
    assert not not_done
    assert [f.result() for f in futures if f.exception() is None] == [
        i * i for i in range(1, 301) if i % 97]
    assert not asked, "every result came down the channel the tasks were submitted on"


def test_a_submission_wakes_the_thread_listening_for_results(setup):
    _svc, _token, client, eid = setup
    ex = Executor(endpoint_id=eid, client=client)  # no worker: nothing ends
    try:
        first = ex.submit(square_or_fail, 1)
        assert sent(first, 10)
        time.sleep(0.2)  # the sender now reads pushes (for up to WAIT_S seconds)
        started = time.monotonic()
        assert sent(ex.submit(square_or_fail, 2), 5)
        assert time.monotonic() - started < 2
    finally:
        started = time.monotonic()
        ex.shutdown(wait=True, cancel_futures=True)
        assert time.monotonic() - started < 5, "shutting down wakes it too"


def test_results_followed_on_a_lost_connection_are_asked_for(tmp_path):
    """The service restarts while the Executor's tasks wait: the channel that
    followed them is gone, and their results come by asking."""
    with ServiceProcess(tmp_path) as svc:
        token, client, eid = alice_with_an_endpoint(tmp_path, svc)
        ex = Executor(endpoint_id=eid, client=client)
        try:
            futures = [ex.submit(square_or_fail, i) for i in range(1, 21)]
            assert all(sent(f, 10) for f in futures)
            svc.stop()
            svc.start()
            with serving(svc, token, eid):
                done, not_done = concurrent.futures.wait(futures, timeout=60)
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
        assert not not_done
        assert [f.result() for f in futures] == [i * i for i in range(1, 21)]


def test_a_failure_of_the_sending_thread_fails_its_futures(setup):
    _svc, _token, client, eid = setup
    ex = Executor(endpoint_id=eid, client=client)  # no worker: nothing ends
    try:
        first = ex.submit(square_or_fail, 1)
        assert sent(first, 10)

        def broken():
            raise RuntimeError("a bug in the sending thread")

        ex._listen = broken
        second = ex.submit(square_or_fail, 2)  # wakes the sender, which then fails
        for future in (first, second):
            with pytest.raises(RuntimeError, match="a bug in the sending thread"):
                future.result(timeout=10)
        with pytest.raises(RuntimeError, match="after shutdown"):
            ex.submit(square_or_fail, 3)
    finally:
        ex.shutdown(wait=True)
