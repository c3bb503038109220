"""`farcall login --device` where it cannot succeed: a code that expires before anyone
approves it, and a provider without the device flow; and what `farcall login --help`
says each way of logging in does. The approved and denied logins are in the browser
test (test_browser_login.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("farcall_service")
from farcall_testkit.service import FARCALL, ServiceProcess  # noqa: E402


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A service whose device codes have expired by the time they are polled."""
    home = tmp_path_factory.mktemp("device-service")
    with ServiceProcess(home, env={"FARCALL_SERVICE_LOG_LEVEL": "WARNING",
                                   "FARCALL_SERVICE_DEVICE_CODE_TTL": "-1",
                                   "FARCALL_SERVICE_DEVICE_POLL_INTERVAL": "1"}) as proc:
        yield proc


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FARCALL_", "GLOBUS_", "FUNCX_", "SSH_"))}
    return {**env, "FARCALL_HOME": str(home), **extra}


def _login(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FARCALL, "login", "--device"], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)


def test_a_device_code_that_expires_unapproved_ends_the_login_clearly(
        service: ServiceProcess, tmp_path: Path) -> None:
    ran = _login(_env(tmp_path, FARCALL_BASE_URL=service.url))
    assert ran.returncode != 0 and "Logged in" not in ran.stdout
    assert "enter the code:" in ran.stdout  # it was shown before it expired
    assert "the code expired before it was approved" in ran.stderr, ran.stderr
    assert "farcall login --device" in ran.stderr
    assert not (tmp_path / "tokens.json").exists()


def test_a_provider_without_the_device_flow_points_to_no_browser(
        service: ServiceProcess, tmp_path: Path) -> None:
    ran = _login(_env(tmp_path, FARCALL_BASE_URL=service.url,
                      FARCALL_AUTH_URL=f"{service.url}/no-such-provider/"))
    assert ran.returncode != 0
    assert "does not offer the device login" in ran.stderr, ran.stderr
    assert "--no-browser" in ran.stderr


def test_login_help_says_what_each_way_of_logging_in_does(tmp_path: Path) -> None:
    ran = subprocess.run([*FARCALL, "login", "--help"], env=_env(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    text = " ".join(ran.stdout.split())
    assert "--no-browser Do not open a browser here: print the sign-in URL" in text
    assert "paste back the code the page shows" in text
    assert "--device Log in from a machine with no browser (RFC 8628 device flow)" in text
    assert "nothing is pasted back" in text
    both = subprocess.run([*FARCALL, "login", "--device", "--no-browser"], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert both.returncode == 2 and "choose one of --device" in both.stderr, both.stderr
