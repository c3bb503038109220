"""Cancelling tasks end to end: farcall's Client and Executor, and the official Client,
against ``farcall server start`` served by a minimal worker."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("farcall_service")

from farcall import Client, Executor, TaskCancelled  # noqa: E402
from farcall_testkit.service import MiniWorker, ServiceProcess, admin  # noqa: E402

COMPAT_PYTHON = os.environ.get("FARCALL_COMPAT_PYTHON", "")


def square(x):
    return x * x


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    home = tmp_path_factory.mktemp("cancel-home")
    with ServiceProcess(home) as svc:
        admin(home, "user", "add", "alice")
        token = admin(home, "token", "create", "alice").splitlines()[-1].strip()
        client = Client(svc.url, token=token)
        yield svc, token, client


def new_endpoint(client: Client) -> str:
    answer = client.transport.request("POST", "/v3/endpoints", json={"endpoint_name": "c"})
    return str(answer["endpoint_id"])


def queue(client: Client, eid: str, fid: str, count: int) -> list[str]:
    batch = client.create_batch()
    for i in range(count):
        batch.add(i, endpoint_id=eid, function_id=fid)
    return client.batch_run(batch)


def sent(future, timeout: float = 30.0) -> bool:
    """Whether ``future``'s task reached the service (its id is known) in time."""
    deadline = time.monotonic() + timeout
    while getattr(future, "task_id", None) is None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_thousand_cancelled_queued_tasks_never_run(setup) -> None:
    svc, token, client = setup
    eid, fid = new_endpoint(client), client.register_function(square)
    ids = queue(client, eid, fid, 1000)  # the endpoint is not running
    answers = client.cancel(ids)
    assert len(answers) == 1000
    assert {a["outcome"] for a in answers.values()} == {"cancelled"}
    worker = MiniWorker(svc.url, token, eid, wait=1.0)
    worker.start()
    try:
        after = client.run(7, endpoint_id=eid, function_id=fid)
        assert client.wait([after], timeout=60)[after]["result"] == 49  # it serves
    finally:
        worker.stop()
    assert set(worker.executions) == {after}  # 0 of the 1,000 ran
    with pytest.raises(TaskCancelled, match="cancelled by alice"):
        client.get_result(ids[0])
    entry = client.get_batch_result(ids[:3])[ids[1]]
    assert entry["status"] == "cancelled" and isinstance(entry["exception"], TaskCancelled)


def test_one_id_gets_one_answer_and_a_cancel_after_the_result_is_a_no_op(setup) -> None:
    svc, token, client = setup
    eid, fid = new_endpoint(client), client.register_function(square)
    worker = MiniWorker(svc.url, token, eid, wait=1.0)
    worker.start()
    try:
        task = client.run(3, endpoint_id=eid, function_id=fid)
        client.wait([task], timeout=60)
    finally:
        worker.stop()
    answer = client.cancel(task)
    assert (answer["outcome"], answer["status"]) == ("already finished", "success")
    assert client.get_result(task) == 9


def test_an_executor_future_s_cancel_reaches_the_service(setup) -> None:
    _svc, _token, client = setup
    eid = new_endpoint(client)
    with Executor(endpoint_id=eid, client=client) as ex:
        future = ex.submit(square, 4)  # nothing serves the endpoint
        assert sent(future)
        assert future.cancel() is True
        assert future.cancelled()
        done, _ = concurrent.futures.wait([future], timeout=30)  # waiters are told
        assert done == {future}
        assert client.get_task(future.task_id)["status"] == "cancelled"
        assert future.cancel() is True  # a cancelled future stays so


def test_a_finished_executor_future_cannot_be_cancelled(setup) -> None:
    svc, token, client = setup
    eid = new_endpoint(client)
    worker = MiniWorker(svc.url, token, eid, wait=1.0)
    worker.start()
    try:
        with Executor(endpoint_id=eid, client=client) as ex:
            future = ex.submit(square, 5)
            assert future.result(timeout=60) == 25
            assert future.cancel() is False
    finally:
        worker.stop()


def test_shutdown_cancels_every_unfinished_task_at_the_service_in_one_call(setup) -> None:
    _svc, _token, client = setup
    eid = new_endpoint(client)
    calls: list[object] = []
    real = client.cancel

    def counted(ids):
        calls.append(ids)
        return real(ids)

    client.cancel = counted  # type: ignore[method-assign]
    try:
        ex = Executor(endpoint_id=eid, client=client)
        futures = [ex.submit(square, i) for i in range(50)]
        assert all(sent(f) for f in futures)
        ex.shutdown(wait=True, cancel_futures=True)
    finally:
        del client.cancel
    assert len(calls) == 1 and len(calls[0]) == 50  # type: ignore[arg-type]
    assert all(f.cancelled() for f in futures)
    done, _ = concurrent.futures.wait(futures, timeout=30)
    assert done == set(futures)
    statuses = {e["status"] for e in client.get_batch_result(
        [f.task_id for f in futures]).values()}
    assert statuses == {"cancelled"}


OFFICIAL = textwrap.dedent('''
    import json, sys
    import globus_sdk
    from globus_compute_sdk.sdk import client as client_module
    url, token, task = sys.argv[1:4]
    client_module.get_web_service_url = lambda *_a, **_k: url
    from globus_compute_sdk import Client
    gcc = Client(authorizer=globus_sdk.AccessTokenAuthorizer(token))

    def raised(call):
        try:
            call()
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    out = {"get_task": raised(lambda: gcc.get_task(task)),
           "get_result": raised(lambda: gcc.get_result(task))}
    batch = gcc.get_batch_result([task]).get(task)
    out["batch_pending"] = None if batch is None else batch["pending"]
    print(json.dumps(out))
''')


@pytest.mark.compat
@pytest.mark.skipif(not COMPAT_PYTHON, reason="FARCALL_COMPAT_PYTHON is not set")
def test_the_official_client_sees_a_cancelled_task_failed_with_the_cancel_text(
        setup, tmp_path: Path) -> None:
    svc, token, client = setup
    eid, fid = new_endpoint(client), client.register_function(square)
    (task,) = queue(client, eid, fid, 1)
    client.cancel(task)
    script = tmp_path / "official.py"
    script.write_text(OFFICIAL)
    env = {**os.environ, "HOME": str(tmp_path), "GLOBUS_SDK_ENVIRONMENT": "production"}
    done = subprocess.run([COMPAT_PYTHON, str(script), svc.url, token, task], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    out = json.loads(done.stdout.strip().splitlines()[-1])
    for call in ("get_task", "get_result"):  # as for any failed task
        assert out[call].startswith("TaskExecutionFailed"), out
        assert "TaskCancelled: the task was cancelled by alice" in out[call]
    assert out["batch_pending"] in (None, False)  # never pending for ever
