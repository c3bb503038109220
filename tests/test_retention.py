"""Results kept for the retention time, then purged: farcall's SDK and the official one.

``farcall server start`` runs with a two-second retention and a purge every fifth of
a second; a minimal worker serves the endpoint. A result is fetched three times, the
purge takes it, then farcall's Client raises ``TaskExpired`` and the official Client
(in ``FARCALL_COMPAT_PYTHON``) fails with the service's "expired" message instead of
waiting for ever.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("farcall_service")
pytest.importorskip("requests")

import requests  # noqa: E402
from farcall import Client, TaskExpired  # noqa: E402
from farcall_testkit.service import MiniWorker, ServiceProcess, admin  # noqa: E402

COMPAT_PYTHON = os.environ.get("FARCALL_COMPAT_PYTHON", "")
MESSAGE = "the service keeps a task and its result for 2 seconds after it ends"

OFFICIAL = textwrap.dedent(
    """
    import json, sys
    import globus_sdk
    from globus_compute_sdk.sdk import client as client_module

    url, token, task_id = sys.argv[1:4]
    client_module.get_web_service_url = lambda *_args, **_kwargs: url
    from globus_compute_sdk import Client

    gcc = Client(authorizer=globus_sdk.AccessTokenAuthorizer(token))
    out = {"batch": {k: v["status"] for k, v in gcc.get_batch_result([task_id]).items()}}
    try:
        gcc.get_result(task_id)
    except globus_sdk.GlobusAPIError as exc:
        out["error"] = [type(exc).__name__, exc.http_status, exc.code, exc.message]
    print(json.dumps(out))
    """
)


def triple(x: int) -> int:
    return 3 * x


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[ServiceProcess, str]]:
    admin(tmp_path, "user", "add", "alice")
    token = admin(tmp_path, "token", "create", "alice").splitlines()[-1].strip()
    env = {"FARCALL_SERVICE_RESULT_RETENTION": "2", "FARCALL_SERVICE_PURGE_INTERVAL": "0.2"}
    with ServiceProcess(tmp_path, env=env) as proc:
        yield proc, token


def until_purged(url: str, token: str, task_id: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        answer = requests.get(f"{url}/v2/tasks/{task_id}", timeout=10,
                              headers={"Authorization": f"Bearer {token}"})
        if answer.status_code != 200 or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_a_result_fetched_three_times_then_purged_reads_expired(
        service: tuple[ServiceProcess, str], tmp_path: Path) -> None:
    proc, token = service
    gcc = Client(proc.url, token=token)
    eid = gcc.transport.request("POST", "/v3/endpoints", json={"endpoint_name": "r"})[
        "endpoint_id"]
    worker = MiniWorker(proc.url, token, eid, wait=1.0)
    worker.start()
    try:
        task_id = gcc.run(7, endpoint_id=eid, function_id=gcc.register_function(triple))
        gcc.wait([task_id], timeout=60, progress=False)
    finally:
        worker.stop()
    # Each from a new Client, so each is the service's answer, not a cached one.
    assert [Client(proc.url, token=token).get_result(task_id) for _ in range(3)] == [21] * 3

    gone = until_purged(proc.url, token, task_id)
    assert gone.status_code == 410 and gone.json()["code"] == "TASK_EXPIRED"
    fresh = Client(proc.url, token=token)
    with pytest.raises(TaskExpired, match=MESSAGE) as expired:
        fresh.get_result(task_id)
    assert expired.value.task_id == task_id
    entry = Client(proc.url, token=token).get_batch_result([task_id, task_id])[task_id]
    assert entry["pending"] is False and isinstance(entry["exception"], TaskExpired)
    waited = Client(proc.url, token=token).wait([task_id], timeout=30, progress=False)
    assert isinstance(waited[task_id]["exception"], TaskExpired)
    # The Client that fetched it before keeps its copy for the session.
    assert gcc.get_result(task_id) == 21

    if not COMPAT_PYTHON:
        pytest.skip("FARCALL_COMPAT_PYTHON is not set: the official Client's half is skipped")
    script = tmp_path / "official.py"
    script.write_text(OFFICIAL)
    done = subprocess.run(
        [COMPAT_PYTHON, str(script), proc.url, token, task_id], capture_output=True,
        text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path), "GLOBUS_SDK_ENVIRONMENT": "production"})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # get_batch_result leaves a failed task out (it logs the failure), as for any other.
    assert out["batch"] == {}
    assert "Failure while unpacking results" in done.stderr and MESSAGE in done.stderr
    name, status, code, message = out["error"]
    assert (status, code) == (410, "TASK_EXPIRED") and MESSAGE in message
