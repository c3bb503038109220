"""Results cached on disk by farcall-cache-sqlite are there for a new Python process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("farcall_service")
pytest.importorskip("farcall_cache_sqlite")

from farcall_testkit.service import MiniWorker, ServiceProcess, admin  # noqa: E402

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from farcall import Client

    def cube(x):
        return x ** 3

    gcc = Client()
    if sys.argv[1] == "run":
        fid = gcc.register_function(cube)
        tid = gcc.run(3, endpoint_id=sys.argv[2], function_id=fid)
        gcc.wait([tid], timeout=60, progress=False)
        print(json.dumps({"task_id": tid, "result": gcc.get_result(tid)}))
    else:
        try:
            print(json.dumps({"result": gcc.get_result(sys.argv[2])}))
        except Exception as exc:
            print(json.dumps({"error": type(exc).__name__}))
    """
)


def session(home, url, token, cache, *args):
    env = {**os.environ, "FARCALL_HOME": str(home), "FARCALL_BASE_URL": url,
           "FARCALL_TOKEN": token, "FARCALL_RESULT_CACHE": cache}
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_get_result_from_a_new_session(tmp_path):
    service = ServiceProcess(tmp_path).start()
    try:
        admin(tmp_path, "user", "add", "alice")
        token = admin(tmp_path, "token", "create", "alice").splitlines()[-1].strip()
        import requests

        eid = requests.post(f"{service.url}/v3/endpoints", json={"endpoint_name": "c"},
                            headers={"Authorization": f"Bearer {token}"}).json()["endpoint_id"]
        worker = MiniWorker(service.url, token, eid, wait=1.0)
        worker.start()
        try:
            first = session(tmp_path, service.url, token, "sqlite", "run", eid)
        finally:
            worker.stop()
        assert first["result"] == 27
    finally:
        service.stop()

    # the service is down: only a cache on disk can answer
    again = session(tmp_path, service.url, token, "sqlite", "get", first["task_id"])
    assert again == {"result": 27}
    without = session(tmp_path, service.url, token, "memory", "get", first["task_id"])
    assert without == {"error": "ServiceUnreachable"}

    with ServiceProcess(tmp_path, port=service.port):
        fetched = session(tmp_path, service.url, token, "memory", "get", first["task_id"])
    assert fetched == {"result": 27}
