"""Stopping child processes that run in their own process group.

The service, endpoints and their workers are started with ``start_new_session``, so a
signal to the group reaches every process the child started.
"""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process_group(
    process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20.0
) -> None:
    """Send ``sig`` to the process's group and reap it; SIGKILL the group after ``timeout``."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
