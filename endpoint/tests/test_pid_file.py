"""Whether an endpoint's pid file names a live endpoint: by the process's start time,
not by its command line (a process may retitle itself, as Dask's scheduler does)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from farcall_endpoint.daemon import PID_FILE, read_pid_file


def _write(directory: Path, pid: int, started: float) -> None:
    (directory / PID_FILE).write_text(json.dumps(
        {"pid": pid, "endpoint_id": "e", "state": "serving", "started": started}))


def test_a_live_process_that_wrote_the_file_is_alive_whatever_its_title(tmp_path: Path) -> None:
    _write(tmp_path, os.getpid(), time.time())  # this test's process, titled "pytest"
    assert read_pid_file(tmp_path) is not None


def test_a_pid_reused_by_a_process_started_after_the_file_is_not(tmp_path: Path) -> None:
    later = subprocess.Popen(["sleep", "30"])
    try:
        _write(tmp_path, later.pid, time.time() - 60)  # written before it started
        assert read_pid_file(tmp_path) is None
    finally:
        later.kill()
        later.wait()


def test_a_dead_process_is_not(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    _write(tmp_path, gone.pid, time.time())
    assert read_pid_file(tmp_path) is None
