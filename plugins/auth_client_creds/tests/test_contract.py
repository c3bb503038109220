"""The client-credentials login manager passes the login manager contract against a
real service, with a client created by ``farcall server client create``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from farcall.testing.login_manager_contract import LoginManagerContract

pytest.importorskip("farcall_service")
from farcall_testkit.service import ServiceProcess, admin  # noqa: E402

VARS = ("GLOBUS_COMPUTE_CLIENT_ID", "GLOBUS_COMPUTE_CLIENT_SECRET", "FUNCX_SDK_CLIENT_ID",
        "FUNCX_SDK_CLIENT_SECRET", "FARCALL_AUTH_URL", "GLOBUS_SDK_SERVICE_URL_AUTH")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    home: Path = tmp_path_factory.mktemp("client-creds-contract")
    admin(home, "user", "add", "rob")
    created = json.loads(admin(home, "client", "create", "rob", "--json"))
    with ServiceProcess(home, env={"FARCALL_SERVICE_LOG_LEVEL": "WARNING"}) as process:
        yield process.url, {"GLOBUS_COMPUTE_CLIENT_ID": created["client_id"],
                            "GLOBUS_COMPUTE_CLIENT_SECRET": created["client_secret"]}


class TestClientCredentialsLoginManager(LoginManagerContract):
    name = "client-credentials"

    @pytest.fixture(autouse=True)
    def _environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for var in VARS:
            monkeypatch.delenv(var, raising=False)

    @pytest.fixture
    def settings(self, service: tuple[str, dict[str, str]],
                 monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        url, credentials = service
        for var, value in credentials.items():
            monkeypatch.setenv(var, value)
        return {"base_url": url}

    @pytest.fixture
    def no_credentials(self, service: tuple[str, dict[str, str]]) -> dict[str, Any]:
        return {"base_url": service[0]}
