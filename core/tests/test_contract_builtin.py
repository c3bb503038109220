"""The core's own plugins pass the contract suites every plugin of their kind runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from farcall.testing.login_manager_contract import LoginManagerContract
from farcall.testing.result_cache_contract import ResultCacheContract
from farcall.testing.serializer_contract import SerializationStrategyContract


class TestJSONData(SerializationStrategyContract):
    identifier = "11"


class TestAllDataStrategies(SerializationStrategyContract):
    identifier = "13"


class TestAllCodeStrategies(SerializationStrategyContract):
    identifier = "12"


class TestMemoryResultCache(ResultCacheContract):
    name = "memory"
    persistent = False


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A farcall service on loopback and a user's static token there."""
    pytest.importorskip("farcall_service")
    testkit = pytest.importorskip("farcall_testkit.service")
    home: Path = tmp_path_factory.mktemp("static-token")
    testkit.admin(home, "user", "add", "tess")
    token = testkit.admin(home, "token", "create", "tess").splitlines()[-1].strip()
    with testkit.ServiceProcess(home) as process:
        yield process.url, token


class TestStaticTokenLoginManager(LoginManagerContract):
    name = "static-token"

    @pytest.fixture
    def settings(self, service: tuple[str, str]) -> dict[str, Any]:
        url, token = service
        return {"base_url": url, "token": token}

    @pytest.fixture
    def no_credentials(self, service: tuple[str, str]) -> dict[str, Any]:
        return {"base_url": service[0], "token": None}
