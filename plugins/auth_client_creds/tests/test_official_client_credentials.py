"""The unmodified official globus-compute-sdk, logged in with client credentials only.

``GLOBUS_COMPUTE_CLIENT_ID``/``_SECRET`` and ``GLOBUS_SDK_SERVICE_URL_AUTH`` point the
official SDK at the service's OAuth2 provider; the task runs on a minimal worker that
serves the endpoint for the client's owner.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
import requests

pytest.importorskip("farcall_service")
from farcall_testkit.service import COMPUTE_SCOPE, MiniWorker, ServiceProcess, admin  # noqa: E402

pytestmark = pytest.mark.compat
COMPAT_PYTHON = os.environ.get("FARCALL_COMPAT_PYTHON", "")

SCRIPT = textwrap.dedent(
    """
    import json, sys, time

    from globus_compute_sdk.sdk import client as client_module

    url = sys.argv[1]
    client_module.get_web_service_url = lambda *_args, **_kwargs: url

    from globus_compute_sdk import Client
    from globus_compute_sdk.errors import TaskPending

    def triple(x):
        return 3 * x

    gcc = Client()
    ep_id = gcc.register_endpoint("robot-endpoint", None)["endpoint_id"]
    fn_id = gcc.register_function(triple)
    task_id = gcc.run(14, endpoint_id=ep_id, function_id=fn_id)
    print(json.dumps({"endpoint_id": ep_id}), flush=True)
    sys.stdin.readline()
    deadline = time.monotonic() + 60
    while True:
        try:
            result = gcc.get_result(task_id)
            break
        except TaskPending:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    print(json.dumps({"result": result, "endpoints": [e["uuid"] for e in gcc.get_endpoints()]}))
    """
)


@pytest.mark.skipif(not COMPAT_PYTHON, reason="FARCALL_COMPAT_PYTHON is not set")
def test_official_client_runs_a_task_with_client_credentials(tmp_path: Path) -> None:
    admin(tmp_path, "user", "add", "alice")
    created = json.loads(admin(tmp_path, "client", "create", "alice", "--json"))
    script = tmp_path / "official.py"
    script.write_text(SCRIPT)
    with ServiceProcess(tmp_path, env={"FARCALL_SERVICE_LOG_LEVEL": "WARNING"}) as service:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("FARCALL_", "GLOBUS_", "FUNCX_"))}
        env.update(
            HOME=str(tmp_path),  # the official SDK caches tokens under ~/.globus_compute
            GLOBUS_SDK_ENVIRONMENT="production",
            GLOBUS_SDK_SERVICE_URL_AUTH=f"{service.url}/auth/",
            GLOBUS_COMPUTE_CLIENT_ID=created["client_id"],
            GLOBUS_COMPUTE_CLIENT_SECRET=created["client_secret"],
        )
        official = subprocess.Popen(
            [COMPAT_PYTHON, str(script), service.url], env=env, cwd=tmp_path, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        worker: MiniWorker | None = None
        try:
            first = official.stdout.readline()
            assert first, official.stderr.read()
            endpoint_id = json.loads(first)["endpoint_id"]
            # The worker serves the endpoint for its owner, alice, with the client.
            grant = requests.post(
                f"{service.url}/auth/v2/oauth2/token",
                data={"grant_type": "client_credentials", "scope": COMPUTE_SCOPE},
                auth=(created["client_id"], created["client_secret"]), timeout=30,
            )
            assert grant.status_code == 200, grant.text
            worker = MiniWorker(service.url, grant.json()["access_token"], endpoint_id, wait=1.0)
            worker.start()
            out, err = official.communicate("go\n", timeout=120)
        finally:
            if official.poll() is None:
                official.kill()
                official.wait()
            if worker is not None:
                worker.stop()
    assert official.returncode == 0, err
    answer = json.loads(out.strip().splitlines()[-1])
    assert answer == {"result": 42, "endpoints": [endpoint_id]}
    assert worker is not None and not worker.errors
