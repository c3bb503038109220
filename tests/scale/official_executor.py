"""The unmodified official globus-compute-sdk ``Executor`` against farcall; run by the
interpreter of .venv-compat (``compat_python``), never imported by the tests.

Usage: ``official_executor.py URL TOKEN ENDPOINT_ID FUTURES BATCH_SIZE [pause]``.
Submits FUTURES tasks and one that raises, then reloads the task group in a new
Executor; prints what it saw as one JSON line. With ``pause``, once every task is
submitted it prints ``{"submitted": N}`` and waits for a line on stdin before it
collects the results (the test injects a fault meanwhile).
"""

import json
import sys
import time

import globus_sdk
from globus_compute_sdk.sdk import client as client_module

url, token, endpoint_id = sys.argv[1], sys.argv[2], sys.argv[3]
futures_wanted, batch_size = int(sys.argv[4]), int(sys.argv[5])
pause = sys.argv[6:] == ["pause"]
client_module.get_web_service_url = lambda *_args, **_kwargs: url

from globus_compute_sdk import Client, Executor  # noqa: E402
from globus_compute_sdk.errors import TaskExecutionFailed  # noqa: E402


def triple(x):
    return 3 * x


def explode(word):
    raise ValueError(f"exploded remotely: {word}")


out = {}
client = Client(authorizer=globus_sdk.AccessTokenAuthorizer(token))
began = time.monotonic()
with Executor(endpoint_id=endpoint_id, client=client, batch_size=batch_size,
              api_burst_limit=1000, api_burst_window_s=1) as executor:
    futures = [executor.submit(triple, i) for i in range(futures_wanted)]
    failing = executor.submit(explode, "kaboom")
    if pause:
        while not all(f.task_id for f in futures):  # every task accepted by the service
            time.sleep(0.05)
        print(json.dumps({"submitted": len(futures)}), flush=True)
        sys.stdin.readline()
    values = [f.result(timeout=600) for f in futures]
    out["seconds"] = time.monotonic() - began
    out["wrong"] = [i for i, v in enumerate(values) if v != 3 * i]
    out["resolved"] = len(values)
    try:
        failing.result(timeout=120)
        out["failure"] = None
    except TaskExecutionFailed as exc:
        out["failure"] = {"type": type(exc).__name__, "text": str(exc),
                          "remote": exc.remote_data}
    task_group_id = str(executor.task_group_id)
    task_ids = {f.task_id: i for i, f in enumerate(futures)}
out["task_group_id"] = task_group_id

# A new Executor on the same task group gets every result back.
with Executor(endpoint_id=endpoint_id, client=client, task_group_id=task_group_id) as again:
    reloaded = list(again.reload_tasks())
    seen = {}
    for future in reloaded:
        try:
            seen[future.task_id] = future.result(timeout=300)
        except TaskExecutionFailed:
            seen[future.task_id] = "failed"
out["reloaded"] = len(reloaded)
out["reload_wrong"] = [t for t, i in task_ids.items() if seen.get(t) != 3 * i]
out["reload_failed"] = sum(1 for v in seen.values() if v == "failed")
print(json.dumps(out), flush=True)
