"""The native login manager passes the login manager contract against a real service."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from farcall.testing.login_manager_contract import LoginManagerContract

pytest.importorskip("farcall_service")
from farcall_auth_native.manager import NativeLoginManager  # noqa: E402
from farcall_testkit.service import FARCALL, ServiceProcess, service_env  # noqa: E402

PASSWORD = "contract password"
ENVIRONMENT = ("FARCALL_AUTH_URL", "GLOBUS_SDK_SERVICE_URL_AUTH", "FARCALL_AUTH_CLIENT_ID")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    home: Path = tmp_path_factory.mktemp("native-contract")
    subprocess.run([*FARCALL, "server", "user", "add", "nina", "--password-stdin"],
                   input=PASSWORD + "\n", env=service_env(home), check=True,
                   capture_output=True, text=True, timeout=60)
    with ServiceProcess(home, env={"FARCALL_SERVICE_LOG_LEVEL": "WARNING"}) as process:
        yield process


def _signed_in(url: str) -> str:
    """What the browser does with the flow's URL: sign in, and read the code."""
    http = requests.Session()
    page = http.get(url, timeout=30)
    fields = dict(re.findall(r"type='hidden' name='(\w+)' value='([^']*)'", page.text))
    fields["csrf_token"] = re.search(r"name='csrf_token' value='([^']+)'", page.text).group(1)
    fields.update(username="nina", password=PASSWORD)
    answer = http.post(url.split("?")[0], data=fields, allow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


class TestNativeLoginManager(LoginManagerContract):
    name = "native"

    @pytest.fixture(autouse=True)
    def _environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for var in ENVIRONMENT:
            monkeypatch.delenv(var, raising=False)

    @pytest.fixture
    def settings(self, service: ServiceProcess, tmp_path: Path) -> dict[str, Any]:
        settings = {"base_url": service.url, "token_file": str(tmp_path / "tokens.json")}
        manager = NativeLoginManager(settings)
        manager.finish_flow(_signed_in(manager.start_flow()))
        return settings

    @pytest.fixture
    def no_credentials(self, service: ServiceProcess, tmp_path: Path) -> dict[str, Any]:
        return {"base_url": service.url, "token_file": str(tmp_path / "nobody.json")}
