"""``farcall.Executor`` against a real service and a worker."""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import json
import os
import re
import subprocess
import time

import pytest
import requests

pytest.importorskip("farcall_service")

from farcall import Client, Executor, SerializationError, TaskExecutionFailed  # noqa: E402
from farcall.errors import FarcallError  # noqa: E402
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


def test_an_unserializable_argument_fails_its_future_alone(setup):
    svc, token, client, eid = setup
    with serving(svc, token, eid), Executor(endpoint_id=eid, client=client) as ex:
        before = ex.submit(square_or_fail, 2)
        broken = ex.submit(square_or_fail, (i for i in range(3)))  # a generator: no pickling
        after = ex.submit(square_or_fail, 3)
        with pytest.raises(SerializationError, match="generator"):
            broken.result(timeout=30)
        assert before.result(timeout=60) == 4 and after.result(timeout=60) == 9
        assert ex.submit(square_or_fail, 4).result(timeout=60) == 16, "it keeps accepting work"
        keyword = ex.submit(square_or_fail, 5, extra=(i for i in "ab"))  # in kwargs too
        with pytest.raises(SerializationError):
            keyword.result(timeout=30)


def test_a_registered_function_runs_by_its_id(setup):
    svc, token, client, eid = setup
    fid = client.register_function(square_or_fail)
    with serving(svc, token, eid), Executor(endpoint_id=eid, client=client) as ex:
        assert ex.submit_to_registered_function(fid, args=(7,)).result(timeout=60) == 49
        assert ex.submit_to_registered_function(fid, kwargs={"x": 8}).result(timeout=60) == 64
        with pytest.raises(FarcallError, match="function_id must be a UUID"):
            ex.submit_to_registered_function("not-an-id")
    assert ex._function_ids == {}, "nothing was registered again"
    idle = Executor(client=client)
    try:
        with pytest.raises(ValueError, match="No endpoint_id set"):
            idle.submit(square_or_fail, 1)
    finally:
        idle.shutdown()


def claim(svc, token, eid, count):
    """The endpoint's side: claim ``count`` tasks, as an endpoint does."""
    tasks, session = [], "claims-in-test"
    deadline = time.monotonic() + 30
    while len(tasks) < count and time.monotonic() < deadline:
        answer = requests.post(f"{svc.url}/farcall/v1/endpoints/{eid}/claim", timeout=60,
                               headers={"Authorization": f"Bearer {token}"},
                               json={"session": session, "max_tasks": count, "wait": 1.0})
        assert answer.status_code == 200, answer.text
        tasks += answer.json()["tasks"]
    return session, tasks


def test_resource_specification_and_user_endpoint_config_reach_the_endpoint(setup):
    svc, token, client, _eid = setup
    eid = client.transport.request(
        "POST", "/v3/endpoints", json={"endpoint_name": "options"})["endpoint_id"]
    with pytest.raises(TypeError, match="resource_specification must be a dict"):
        Executor(eid, client, resource_specification="num_nodes=2")
    with pytest.raises(TypeError, match="JSON-serializable"):
        Executor(eid, client, user_endpoint_config={"when": object()})
    spec, config = {"num_nodes": 2, "ranks_per_node": 4}, {"account": "lab-7", "walltime": 60}
    ex = Executor(eid, client, resource_specification=spec, user_endpoint_config=config,
                  amqp_port=5671)
    try:
        first = ex.submit(square_or_fail, 3)
        assert sent(first, 10)
        ex.resource_specification = {"num_nodes": 1}
        ex.user_endpoint_config = None
        second = ex.submit(square_or_fail, 4)
        assert sent(second, 10)
        session, tasks = claim(svc, token, eid, 2)
        by_id = {task["task_id"]: task for task in tasks}
        assert by_id[first.task_id]["resource_specification"] == spec
        assert by_id[first.task_id]["user_endpoint_config"] == config
        assert by_id[second.task_id]["resource_specification"] == {"num_nodes": 1}
        assert by_id[second.task_id]["user_endpoint_config"] is None
        serializer = client.serializer
        answer = requests.post(
            f"{svc.url}/farcall/v1/endpoints/{eid}/results", timeout=60,
            headers={"Authorization": f"Bearer {token}"},
            json={"session": session, "results": [
                {"task_id": tid, "status": "success", "result": serializer.serialize(tid[:8])}
                for tid in by_id]})
        assert answer.status_code == 200, answer.text
        assert first.result(timeout=30) == first.task_id[:8]
        assert second.result(timeout=30) == second.task_id[:8]
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def test_an_adopted_group_is_joined_only_on_the_service_that_made_it(setup, monkeypatch):
    """A group exists only where it was made, and a v3 submission naming a group the
    service does not know is refused: a new Executor for another service makes its own."""
    _svc, _token, client, eid = setup
    monkeypatch.setattr(Executor, "_default_task_group_ids", {})
    first = Executor(eid, client)  # no worker: the task waits on the service
    try:
        assert sent(first.submit(square_or_fail, 2), 10)
        group = first.task_group_id
        assert group is not None
    finally:
        first.shutdown(wait=False, cancel_futures=True)
    elsewhere = Executor(eid, Client("http://127.0.0.1:9", token="x", retries=0))
    here = Executor(eid, client)
    try:
        assert elsewhere.task_group_id is None
        assert here.task_group_id == group
    finally:
        elsewhere.shutdown(wait=False)
        here.shutdown(wait=False)
    unknown = client.create_batch(task_group_id="0" * 8 + "-0000-4000-8000-" + "0" * 12)
    unknown.add(3, endpoint_id=eid, function_id=client.register_function(square_or_fail))
    with pytest.raises(FarcallError, match="TASK_GROUP_NOT_FOUND|task group .* not found"):
        client.batch_run(unknown)


def test_the_task_group_is_adopted_and_its_tasks_reload_elsewhere(setup, monkeypatch):
    svc, token, client, eid = setup
    monkeypatch.setattr(Executor, "_default_task_group_ids", {})
    first = Executor(eid, client)  # no worker: the tasks wait on the service
    assert first.task_group_id is None
    futures = [first.submit(square_or_fail, i) for i in (2, 3, 4)]
    assert all(sent(f, 10) for f in futures)
    group = first.task_group_id
    assert group is not None, "adopted from the service's answer"
    first.shutdown(wait=False)  # gone; its tasks are not (cancel_futures would cancel them)

    later = Executor(eid, client)
    try:
        assert later.task_group_id == group, "a new Executor joins the adopted group"
        own = later.submit(square_or_fail, 5)
        assert sent(own, 10)
        with serving(svc, token, eid):
            reloaded = later.reload_tasks()
            assert sorted(f.task_id for f in reloaded) == sorted(
                f.task_id for f in [*futures, own])
            assert any(f is own for f in reloaded), "an open task keeps its future"
            done, not_done = concurrent.futures.wait(reloaded, timeout=60)
        assert not not_done
        results = {f.task_id: f.result() for f in reloaded}
        assert [results[f.task_id] for f in [*futures, own]] == [4, 9, 16, 25]
    finally:
        later.shutdown(wait=True, cancel_futures=True)
    with pytest.raises(FarcallError, match="task_group_id must be a UUID"):
        Executor(eid, client, task_group_id="nope")


def test_an_executor_shows_progress_when_asked(setup, monkeypatch):
    svc, token, client, eid = setup
    shown = io.StringIO()
    monkeypatch.setattr("sys.stderr", shown)
    with serving(svc, token, eid), Executor(eid, client) as quiet:
        quiet.submit(square_or_fail, 1).result(timeout=60)
    assert shown.getvalue() == "", "no progress unless asked for"
    with serving(svc, token, eid), Executor(eid, client, progress=True) as ex:
        futures = [ex.submit(square_or_fail, i) for i in (97, 1, 2, 194)]
        concurrent.futures.wait(futures, timeout=60)
    last = shown.getvalue().rstrip("\n").rsplit("\r", 1)[-1]
    assert re.fullmatch(r"\[#{30}\] 4 tasks: 2 done, 2 failed in \S+ \(\d+\.\d/s\)\s*", last), last
    assert shown.getvalue().endswith("\n")


OFFICIAL_BATCH = """
import json, sys

import globus_sdk
from globus_compute_sdk import Client
from globus_compute_sdk.sdk import client as client_module

url, token, eid, fid, options = sys.argv[1:6]
options = json.loads(options)
client_module.get_web_service_url = lambda *_args, **_kwargs: url
gcc = Client(authorizer=globus_sdk.AccessTokenAuthorizer(token))
batch = gcc.create_batch(**options)
batch.add(fid, args=(3,))
answer = gcc.batch_run(eid, batch)
print(json.dumps(answer["tasks"][fid]))
"""


@pytest.mark.compat
@pytest.mark.skipif(not os.environ.get("FARCALL_COMPAT_PYTHON"),
                    reason="FARCALL_COMPAT_PYTHON is not set")
def test_options_reach_the_endpoint_as_the_official_sdk_sends_them(setup, tmp_path):
    svc, token, client, _eid = setup
    eid = client.transport.request(
        "POST", "/v3/endpoints", json={"endpoint_name": "as-official"})["endpoint_id"]
    fid = client.register_function(square_or_fail)
    options = {"resource_specification": {"num_nodes": 2, "ranks_per_node": 2},
               "user_endpoint_config": {"account": "lab-7", "nested": {"walltime": 60}}}
    script = tmp_path / "official_batch.py"
    script.write_text(OFFICIAL_BATCH)
    done = subprocess.run(
        [os.environ["FARCALL_COMPAT_PYTHON"], str(script), svc.url, token, eid, fid,
         json.dumps(options)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path), "GLOBUS_SDK_ENVIRONMENT": "production"})
    assert done.returncode == 0, done.stderr[-3000:]
    (official_tid,) = json.loads(done.stdout.strip().splitlines()[-1])
    ex = Executor(eid, client, **options)
    try:
        ours = ex.submit_to_registered_function(fid, args=(3,))
        assert sent(ours, 10)
        _session, tasks = claim(svc, token, eid, 2)
        by_id = {task["task_id"]: task for task in tasks}
        for field in ("resource_specification", "user_endpoint_config"):
            assert by_id[ours.task_id][field] == by_id[official_tid][field] == options[field]
    finally:
        ex.shutdown(wait=False, cancel_futures=True)
