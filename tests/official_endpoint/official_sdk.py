"""The official globus-compute-sdk 4.19 runs tasks on the official endpoint through
farcall; run by the interpreter of .venv-compat, never imported by the tests.

Usage: ``official_sdk.py URL TOKEN ENDPOINT_ID COUNT``: COUNT tasks with
``Client.run``, COUNT with the ``Executor``, one that raises; then the endpoint's
status and metadata. Prints what it saw as one JSON line.
"""

import json
import sys
import time

import globus_sdk
from globus_compute_sdk.sdk import client as client_module

url, token, endpoint_id, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client_module.get_web_service_url = lambda *_args, **_kwargs: url

from globus_compute_sdk import Client, Executor  # noqa: E402
from globus_compute_sdk.errors import TaskExecutionFailed  # noqa: E402
from globus_compute_sdk.errors.error_types import TaskPending  # noqa: E402


def cube(x):
    return x * x * x


def explode(word):
    raise ValueError(f"exploded remotely: {word}")


def result(client, task_id, patience=600):
    deadline = time.monotonic() + patience
    while True:
        try:
            return client.get_result(task_id)
        except TaskPending:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


out = {}
client = Client(authorizer=globus_sdk.AccessTokenAuthorizer(token))
cube_id = client.register_function(cube)
task_ids = [client.run(n, endpoint_id=endpoint_id, function_id=cube_id) for n in range(count)]
out["run_wrong"] = [n for n, t in enumerate(task_ids) if result(client, t) != n ** 3]
failing = client.run("kaboom", endpoint_id=endpoint_id,
                     function_id=client.register_function(explode))
try:
    result(client, failing)
    out["failure"] = None
except Exception as exc:
    out["failure"] = {"type": type(exc).__name__, "text": str(exc)}

with Executor(endpoint_id=endpoint_id, client=client) as executor:
    futures = [executor.submit(cube, n) for n in range(count)]
    raising = executor.submit(explode, "in the executor")
    out["executor_wrong"] = [n for n, f in enumerate(futures) if f.result(600) != n ** 3]
    try:
        raising.result(120)
        out["executor_failure"] = None
    except TaskExecutionFailed as exc:
        out["executor_failure"] = {"text": str(exc), "remote": exc.remote_data}

out["status"] = client.get_endpoint_status(endpoint_id)
out["metadata"] = client.get_endpoint_metadata(endpoint_id)
print(json.dumps(out, default=str))
