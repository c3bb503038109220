"""The official globus-compute smoke tests' checks (tests/compat/official_smoke.py),
made by the unmodified 4.19 SDK against ``farcall dev``: a real service and endpoint,
started as a user starts them, with a scratch RabbitMQ vhost as its broker so the
official Executor gets its results as it does from the hosted service."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("farcall_dev")
pytest.importorskip("farcall_broker_rabbitmq")

pytestmark = pytest.mark.compat

COMPAT_PYTHON = os.environ.get("FARCALL_COMPAT_PYTHON", "")
SCRIPT = Path(__file__).parent / "compat" / "official_smoke.py"
FARCALL = [sys.executable, "-c", "from farcall.cli import main; main()"]
#: The smoke tests of test_version.py, test_running_functions.py and
#: test_s3_indirect.py that run (their test_arg_size_too_large is marked skip there).
SMOKE_TESTS = 16


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dev(tmp_path: Path, broker_url: str) -> Iterator[dict[str, Any]]:
    """``farcall dev --broker ...``, until its profile names the endpoint."""
    home = tmp_path / "home"
    env = {**os.environ, "FARCALL_HOME": str(home)}
    process = subprocess.Popen(
        [*FARCALL, "dev", "--port", str(_free_port()), "--workers", "2", "--broker", broker_url,
         # The hosted service's 10 MB result limit, which the smoke tests' size checks
         # assume (farcall's own default is 1 GiB).
         "--max-result-size", str(10 * 1024 * 1024)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                profile = json.loads((home / "dev.json").read_text())
                if "endpoint_id" in profile:
                    break
            except (OSError, ValueError):
                pass
            assert process.poll() is None, process.stdout.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "farcall dev did not become ready"
            time.sleep(0.2)
        yield dict(profile)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.skipif(not COMPAT_PYTHON, reason="FARCALL_COMPAT_PYTHON is not set")
def test_the_official_smoke_tests_pass_against_farcall_dev(
        dev: dict[str, Any], tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "GLOBUS_SDK_ENVIRONMENT": "production"}
    ran = subprocess.run(
        [COMPAT_PYTHON, str(SCRIPT), dev["base_url"], dev["token"], dev["endpoint_id"]],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert ran.returncode == 0, ran.stderr
    outcomes = json.loads(ran.stdout.strip().splitlines()[-1])
    assert outcomes.pop("environment warnings") == []  # same Python and dill on both sides

    failed = {name: why for name, why in outcomes.items() if why != "passed"}
    assert failed == {}
    assert len(outcomes) == SMOKE_TESTS
