"""The unmodified official globus-compute-sdk Client against a real farcall service.

The service runs as ``farcall server start`` in a subprocess; a minimal worker thread
serves the endpoint through the hand-off routes; the official Client runs the shared
scenario (``farcall_testkit.official_scenario``) in the interpreter named by
``FARCALL_COMPAT_PYTHON``.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

pytest.importorskip("farcall_service")
pytest.importorskip("requests")

from farcall_testkit.official_scenario import run_official_client  # noqa: E402
from farcall_testkit.service import MiniWorker, ServiceProcess, admin  # noqa: E402

pytestmark = pytest.mark.compat

COMPAT_PYTHON = os.environ.get("FARCALL_COMPAT_PYTHON", "")


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
    workers: list[MiniWorker] = []

    def serve(endpoint_id: str) -> None:
        workers.append(MiniWorker(proc.url, token, endpoint_id, wait=1.0))
        workers[0].start()

    try:
        out = run_official_client(COMPAT_PYTHON, proc.url, token, tmp_path, serve, timeout=180)
    finally:
        for worker in workers:
            worker.stop()

    assert out["constructed"] is True
    for ident in [*out["function_ids"], out["endpoint_id"]]:
        assert str(uuid.UUID(ident)) == ident
    assert out["pending_first"] is True
    assert out["status_before_serving"] == "offline"
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
    assert len(workers) == 1 and not workers[0].errors
