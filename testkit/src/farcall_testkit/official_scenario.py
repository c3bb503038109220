"""The unmodified official globus-compute-sdk Client's scenario, for compatibility tests.

The service's tests serve it with a minimal worker, the endpoint's tests with a real
endpoint on each engine; both run the same script here. The Client runs in another
interpreter (``FARCALL_COMPAT_PYTHON``, with the official SDK installed), registers an
endpoint and functions, prints the endpoint id and waits for a line on stdin; the test
then starts serving that endpoint, and the Client runs tasks and prints what it saw as
one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    out["status_before_serving"] = gcc.get_endpoint_status(ep_id)["status"]

    print(json.dumps({"endpoint_id": ep_id}), flush=True)
    sys.stdin.readline()  # the test serves the endpoint now

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


class ScenarioFailed(AssertionError):
    """The official Client exited with an error; its stderr is the message."""


def run_official_client(
    python: str, url: str, token: str, workdir: Path, serve: Callable[[str], Any],
    timeout: float = 240.0,
) -> dict[str, Any]:
    """Run the scenario with ``python``; ``serve(endpoint_id)`` starts serving the
    endpoint the Client registered. Returns what the Client saw."""
    script = workdir / "official_client.py"
    script.write_text(CLIENT_SCRIPT)
    env = {**os.environ, "HOME": str(workdir), "GLOBUS_SDK_ENVIRONMENT": "production"}
    client = subprocess.Popen(
        [python, str(script), url, token],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, cwd=workdir, start_new_session=True,
    )
    try:
        first = client.stdout.readline()  # type: ignore[union-attr]
        if not first:
            raise ScenarioFailed(client.stderr.read())  # type: ignore[union-attr]
        serve(json.loads(first)["endpoint_id"])
        out_text, err_text = client.communicate("go\n", timeout=timeout)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    if client.returncode != 0:
        raise ScenarioFailed(err_text)
    return json.loads(out_text.strip().splitlines()[-1])
