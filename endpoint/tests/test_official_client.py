"""The unmodified official globus-compute-sdk 4.19 Client, served by a real farcall
endpoint process (``python -m farcall_endpoint start``) on each engine.

The Client runs in ``FARCALL_COMPAT_PYTHON``, registers an endpoint and functions,
prints the endpoint id and waits; the test configures a farcall endpoint with that id,
starts it, and lets the Client run its scenario.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

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

    def double(x):
        return 2 * x

    def add(a, b=1):
        return a + b

    def boom():
        raise ValueError("kaboom from the remote side")

    def wait(call, timeout=90):
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
    ep_id = gcc.register_endpoint("e2e-endpoint", None)["endpoint_id"]
    f_double = gcc.register_function(double)
    f_add = gcc.register_function(add)
    f_boom = gcc.register_function(boom)
    f_src = gcc.register_source_code("def greet(name):\\n    return f'hello {name}'\\n", "greet")
    t_first = gcc.run(21, endpoint_id=ep_id, function_id=f_double)
    out["status_before"] = gcc.get_endpoint_status(ep_id)["status"]

    print(json.dumps({"endpoint_id": ep_id}), flush=True)
    sys.stdin.readline()  # the farcall endpoint is serving now

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
    ids_double, ids_add = submitted["tasks"][f_double], submitted["tasks"][f_add]
    deadline = time.monotonic() + 90
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
    out["endpoints"] = gcc.get_endpoints()
    out["endpoint_status"] = gcc.get_endpoint_status(ep_id)
    out["endpoint_id"] = ep_id
    print(json.dumps(out), flush=True)
    '''
)

ENGINES = [
    pytest.param("process", 2, id="process"),
    pytest.param("thread", 2, id="thread"),
    pytest.param("parsl", 1, id="parsl", marks=pytest.mark.skipif(
        importlib.util.find_spec("farcall_engine_parsl") is None,
        reason="farcall-engine-parsl is not installed")),
    pytest.param("dask", 1, id="dask", marks=pytest.mark.skipif(
        importlib.util.find_spec("farcall_engine_dask") is None,
        reason="farcall-engine-dask is not installed")),
]


@pytest.mark.skipif(not COMPAT_PYTHON, reason="FARCALL_COMPAT_PYTHON is not set")
@pytest.mark.parametrize(("engine", "workers"), ENGINES)
def test_official_client_against_endpoint(service, make_endpoint, tmp_path: Path,
                                          engine: str, workers: int) -> None:
    script = tmp_path / "client.py"
    script.write_text(CLIENT_SCRIPT)
    env = {**os.environ, "HOME": str(tmp_path), "GLOBUS_SDK_ENVIRONMENT": "production"}
    client = subprocess.Popen(
        [COMPAT_PYTHON, str(script), service.url, service.token],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, cwd=tmp_path, start_new_session=True,
    )
    try:
        first = client.stdout.readline()
        assert first, client.stderr.read()
        endpoint_id = json.loads(first)["endpoint_id"]
        endpoint = make_endpoint("e2e-endpoint", endpoint_id=endpoint_id,
                                 engine={"type": engine, "workers": workers})
        endpoint.start()
        out_text, err_text = client.communicate("go\n", timeout=240)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert client.returncode == 0, err_text + endpoint.log()
    out = json.loads(out_text.strip().splitlines()[-1])

    assert str(uuid.UUID(out["endpoint_id"])) == out["endpoint_id"] == endpoint.endpoint_id
    assert out["status_before"] == "offline"
    assert out["run_result"] == 42
    assert out["source_result"] == "hello farcall"
    assert "ValueError: kaboom from the remote side" in out["failure"]
    assert "Traceback" in out["failure_remote"]
    assert out["batch_double"] == [0, 2, 4, 6, 8]
    assert out["batch_add"] == [10, 11, 12, 13, 14]
    assert out["task"] == {"pending": False, "status": "success", "result": 42}
    assert [e["uuid"] for e in out["endpoints"]] == [endpoint_id]
    assert out["endpoints"][0]["name"] == "e2e-endpoint"
    status = out["endpoint_status"]
    assert status["status"] == "online"
    assert status["details"]["total_workers"] == workers
