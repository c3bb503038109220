"""The unmodified official globus-compute-sdk Client against a real farcall service.

The service runs as ``farcall server start`` in a subprocess; a minimal worker thread
serves the endpoint through the hand-off routes; the official Client runs in the
interpreter named by ``FARCALL_COMPAT_PYTHON`` and prints what it saw as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

pytest.importorskip("farcall_service")
pytest.importorskip("requests")

from farcall_service.testing import MiniWorker, ServiceProcess, admin  # noqa: E402

pytestmark = pytest.mark.compat

COMPAT_PYTHON = os.environ.get("FARCALL_COMPAT_PYTHON", "")

CLIENT_SCRIPT = textwrap.dedent(
    '''
    import json, sys, time

    import globus_sdk
    from globus_compute_sdk.sdk import client as client_module

    url, token = sys.argv[1], sys.argv[2]
    client_module.get_web_service_url = lambda *_args, **_kwargs: url

    from globus_compute_sdk import Client
    from globus_compute_sdk.errors import TaskExecutionFailed, TaskPending
    from globus_sdk import GlobusAPIError

    def double(x):
        return 2 * x

    def add(a, b=1):
        return a + b

    def boom():
        raise ValueError("kaboom from the remote side")

    def wait(call, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return call()
            except TaskPending:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    out = {}
    gcc = Client(authorizer=globus_sdk.AccessTokenAuthorizer(token))
    out["constructed"] = True

    ep = gcc.register_endpoint("e2e-endpoint", None, metadata={"hostname": "e2e-host"})
    ep_id = ep["endpoint_id"]
    f_double = gcc.register_function(double, description="doubles a number")
    f_add = gcc.register_function(add)
    f_boom = gcc.register_function(boom)
    f_src = gcc.register_source_code(
        "def greet(name):\\n    return f'hello {name}'\\n", "greet"
    )
    out["function_ids"] = [f_double, f_add, f_boom, f_src]

    t_first = gcc.run(21, endpoint_id=ep_id, function_id=f_double)
    try:
        gcc.get_result(t_first)
        out["pending_first"] = False
    except TaskPending:
        out["pending_first"] = True
    out["status_before_worker"] = gcc.get_endpoint_status(ep_id)["status"]

    print(json.dumps({"endpoint_id": ep_id}), flush=True)
    sys.stdin.readline()  # the test starts its worker now

    out["run_result"] = wait(lambda: gcc.get_result(t_first))
    t_src = gcc.run("farcall", endpoint_id=ep_id, function_id=f_src)
    out["source_result"] = wait(lambda: gcc.get_result(t_src))

    t_boom = gcc.run(endpoint_id=ep_id, function_id=f_boom)
    try:
        wait(lambda: gcc.get_result(t_boom))
        out["failure"] = None
    except TaskExecutionFailed as exc:
        out["failure"] = str(exc)
        out["failure_remote"] = exc.remote_data

    batch = gcc.create_batch()
    for i in range(5):
        batch.add(f_double, (i,))
        batch.add(f_add, (i,), {"b": 10})
    submitted = gcc.batch_run(ep_id, batch)
    out["batch_keys"] = sorted(submitted["tasks"])
    ids_double = submitted["tasks"][f_double]
    ids_add = submitted["tasks"][f_add]
    deadline = time.monotonic() + 60
    while True:
        results = gcc.get_batch_result(ids_double + ids_add)
        if len(results) == 10 and not any(r["pending"] for r in results.values()):
            break
        assert time.monotonic() < deadline, results
        time.sleep(0.1)
    out["batch_double"] = [results[t]["result"] for t in ids_double]
    out["batch_add"] = [results[t]["result"] for t in ids_add]

    task = gcc.get_task(t_first)
    out["task"] = {k: task[k] for k in ("pending", "status", "result")}
    fn = gcc.get_function(f_double)
    out["function"] = {k: fn[k] for k in ("function_uuid", "function_name", "description")}
    out["function_code_prefix"] = fn["function_code"][:8]
    out["source_code"] = gcc.get_function(f_src)["function_code"]
    out["delete"] = gcc.delete_function(f_boom).data
    try:
        gcc.get_function(f_boom)
        out["after_delete"] = None
    except GlobusAPIError as exc:
        out["after_delete"] = [exc.http_status, exc.code]

    out["endpoints"] = gcc.get_endpoints()
    out["endpoint_status"] = gcc.get_endpoint_status(ep_id)
    out["endpoint_id"] = ep_id
    print(json.dumps(out), flush=True)
    '''
)


@pytest.fixture
def service(tmp_path: Path):
    admin(tmp_path, "user", "add", "alice")
    token = admin(tmp_path, "token", "create", "alice")
    proc = ServiceProcess(tmp_path)
    proc.start()
    try:
        yield proc, token
    finally:
        proc.stop()


@pytest.mark.skipif(not COMPAT_PYTHON, reason="FARCALL_COMPAT_PYTHON is not set")
def test_official_client_end_to_end(service, tmp_path: Path) -> None:
    proc, token = service
    script = tmp_path / "client.py"
    script.write_text(CLIENT_SCRIPT)
    env = {**os.environ, "HOME": str(tmp_path), "GLOBUS_SDK_ENVIRONMENT": "production"}
    client = subprocess.Popen(
        [COMPAT_PYTHON, str(script), proc.url, token],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    worker: MiniWorker | None = None
    try:
        first = client.stdout.readline()
        assert first, client.stderr.read()
        endpoint_id = json.loads(first)["endpoint_id"]
        worker = MiniWorker(proc.url, token, endpoint_id, wait=1.0)
        worker.start()
        out_text, err_text = client.communicate("go\n", timeout=180)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        if worker is not None:
            worker.stop()
    assert client.returncode == 0, err_text
    out = json.loads(out_text.strip().splitlines()[-1])

    assert out["constructed"] is True
    for ident in [*out["function_ids"], out["endpoint_id"]]:
        assert str(uuid.UUID(ident)) == ident
    assert out["pending_first"] is True
    assert out["status_before_worker"] == "offline"
    assert out["run_result"] == 42
    assert out["source_result"] == "hello farcall"
    assert "ValueError: kaboom from the remote side" in out["failure"]
    assert "Traceback" in out["failure_remote"]
    assert out["batch_keys"] == sorted(out["function_ids"][:2])
    assert out["batch_double"] == [0, 2, 4, 6, 8]
    assert out["batch_add"] == [10, 11, 12, 13, 14]
    assert out["task"] == {"pending": False, "status": "success", "result": 42}
    assert out["function"] == {
        "function_uuid": out["function_ids"][0],
        "function_name": "double",
        "description": "doubles a number",
    }
    assert out["function_code_prefix"].split("\n")[1] == "01"
    source_buffer = "st\ngreet:def greet(name):\n    return f'hello {name}'\n"
    assert out["source_code"] == f"{len(source_buffer)}\n{source_buffer}"
    assert out["delete"] == {"result": 302}
    assert out["after_delete"] == [404, "FUNCTION_NOT_FOUND"]
    assert [e["uuid"] for e in out["endpoints"]] == [out["endpoint_id"]]
    assert out["endpoints"][0]["name"] == "e2e-endpoint"
    assert out["endpoint_status"]["status"] == "online"
    assert out["endpoint_status"]["details"]["total_workers"] == 1
    assert worker is not None and not worker.errors
