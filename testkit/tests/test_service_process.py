"""The testkit's own promise: a service it starts answers on loopback and is gone after."""

from __future__ import annotations

import os
from pathlib import Path

import requests
from farcall_testkit.service import ServiceProcess


def test_a_service_process_answers_and_leaves_nothing_behind(tmp_path: Path) -> None:
    service = ServiceProcess(tmp_path)
    service.start()
    try:
        assert service.url.startswith("http://127.0.0.1:")
        answer = requests.get(f"{service.url}/v2/version", timeout=10)
        assert answer.status_code == 401, answer.text  # the service, asking who calls
        assert answer.json()["code"] == "UNAUTHORIZED"
        assert service.process is not None
        pid = service.process.pid
    finally:
        service.stop()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    raise AssertionError(f"the service process {pid} is still running after stop()")
