"""``farcall dev`` in a test: started in its own process group with a home of the
test's, ready once its profile names the endpoint, and always stopped."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from farcall_testkit.service import FARCALL, free_port

#: Seconds ``farcall dev`` gets to start its service and endpoint.
READY_TIMEOUT = 120.0


def start_dev(home: Path, *args: str, env: Mapping[str, str] | None = None,
              ) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """``farcall dev ARGS`` with ``FARCALL_HOME=home`` (in ``env``, this process's
    environment by default); the process and its profile (``base_url``, ``token``,
    ``endpoint_id``) once it serves. Fails the test, with what it printed, if it
    exits or is not ready within ``READY_TIMEOUT``."""
    env = {**(os.environ if env is None else env), "FARCALL_HOME": str(home)}
    process = subprocess.Popen([*FARCALL, "dev", *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            profile = json.loads((home / "dev.json").read_text())
            if "endpoint_id" in profile:
                return process, dict(profile)
        if process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"farcall dev exited while starting:\n{out}")
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    raise AssertionError(f"farcall dev did not become ready within {READY_TIMEOUT:.0f} s")


def stop_dev(process: subprocess.Popen[str]) -> str:
    """Stop ``farcall dev`` as Ctrl-C does (SIGKILL to its group if it hangs); what
    it printed."""
    process.send_signal(signal.SIGINT)
    try:
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return out or ""


@contextlib.contextmanager
def running_dev(home: Path, args: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """``farcall dev --port <free> ARGS`` for the ``with`` block; yields its profile."""
    process, profile = start_dev(home, "--port", str(free_port()), *args)
    try:
        yield profile
    finally:
        stop_dev(process)
