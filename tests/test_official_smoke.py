"""The official globus-compute smoke tests' checks (tests/compat/official_smoke.py),
made by the unmodified 4.19 SDK against ``farcall dev``: a real service and endpoint,
started as a user starts them, with a scratch RabbitMQ vhost as its broker so the
official Executor gets its results as it does from the hosted service."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("farcall_dev")
pytest.importorskip("farcall_broker_rabbitmq")

from farcall_testkit.dev import running_dev  # noqa: E402

pytestmark = pytest.mark.compat

COMPAT_PYTHON = os.environ.get("FARCALL_COMPAT_PYTHON", "")
SCRIPT = Path(__file__).parent / "compat" / "official_smoke.py"
#: The smoke tests of test_version.py, test_running_functions.py and
#: test_s3_indirect.py that run (their test_arg_size_too_large is marked skip there).
SMOKE_TESTS = 16


@pytest.fixture
def dev(tmp_path: Path, broker_url: str) -> Iterator[dict[str, Any]]:
    """``farcall dev --broker ...``, until its profile names the endpoint."""
    with running_dev(tmp_path / "home", [
            "--workers", "2", "--broker", broker_url,
            # The hosted service's 10 MB result limit, which the smoke tests' size
            # checks assume (farcall's own default is 1 GiB).
            "--max-result-size", str(10 * 1024 * 1024)]) as profile:
        yield profile


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
