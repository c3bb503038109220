"""Fixtures: a real service on a free loopback port, and endpoint processes that are
always killed with their whole process group."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("farcall_service")

from farcall_testkit.endpoint import Api, EndpointProcess, create_user, start_service  # noqa: E402

#: Short timings so offline detection and reconnection happen within a test's patience.
SERVICE_ARGS = ["--offline-timeout", "3", "--requeue-timeout", "60", "--rate-limit", "0"]
FAST_ENDPOINT = {"heartbeat_period": 1.0, "claim_wait": 2.0, "max_backoff": 1.0}


@dataclass
class Service:
    home: Path
    token: str
    process: Any

    @property
    def url(self) -> str:
        return self.process.url


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    token = create_user(tmp_path)
    svc = Service(tmp_path, token, start_service(tmp_path, SERVICE_ARGS))
    try:
        yield svc
    finally:
        svc.process.kill()  # a test may have replaced it (restarting the service)


@pytest.fixture
def api(service: Service) -> Iterator[Api]:
    client = Api(service.url, service.token)
    yield client
    client.close()


@pytest.fixture
def make_endpoint(service: Service) -> Iterator[Callable[..., EndpointProcess]]:
    started: list[EndpointProcess] = []

    def make(name: str = "ep", **settings: Any) -> EndpointProcess:
        endpoint = EndpointProcess(service.home, name, service.url, service.token,
                                   **{**FAST_ENDPOINT, **settings})
        started.append(endpoint)
        return endpoint

    yield make
    for endpoint in started:
        endpoint.stop()


#: ``farcall`` as installed, without depending on the console script being on PATH.
FARCALL = [sys.executable, "-c", "from farcall.cli import main; main()"]


@pytest.fixture
def cli(service: Service) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli("start", "ep", "--detach")`` runs ``farcall endpoint start ep --detach`` as
    the service's user; asserts it succeeded unless ``check=False``."""

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FARCALL_")}
        env.update(FARCALL_HOME=str(service.home), FARCALL_BASE_URL=service.url,
                   FARCALL_TOKEN=service.token)
        done = subprocess.run([*FARCALL, "endpoint", *args], env=env, capture_output=True,
                              text=True, timeout=120)
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    return run
