"""The native login manager without a browser: silent refresh with rotation, and logout."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

pytest.importorskip("farcall_service")
from farcall.errors import FarcallError  # noqa: E402
from farcall_auth_native.manager import NativeLoginManager  # noqa: E402
from farcall_testkit.service import FARCALL, ServiceProcess, service_env  # noqa: E402

PASSWORD = "native manager password"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    subprocess.run([*FARCALL, "server", "user", "add", "bob", "--password-stdin"],
                   input=PASSWORD + "\n", env=service_env(tmp_path), check=True,
                   capture_output=True, text=True, timeout=60)
    # Access tokens shorter than globus-sdk's renewal margin: every use refreshes.
    env = {"FARCALL_SERVICE_ACCESS_TOKEN_TTL": "5", "FARCALL_SERVICE_LOG_LEVEL": "WARNING"}
    with ServiceProcess(tmp_path, env=env) as proc:
        yield proc


def _sign_in_over_http(url: str) -> str:
    """What the browser does: open the authorize URL, submit the form, read the code."""
    http = requests.Session()
    page = http.get(url, timeout=30)
    csrf = re.search(r"name='csrf_token' value='([^']+)'", page.text).group(1)
    fields = dict(re.findall(r"type='hidden' name='(\w+)' value='([^']*)'", page.text))
    fields.update(csrf_token=csrf, username="bob", password=PASSWORD)
    answer = http.post(url.split("?")[0], data=fields, allow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


def test_tokens_refresh_silently_and_rotate(service: ServiceProcess, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("FARCALL_AUTH_URL", "GLOBUS_SDK_SERVICE_URL_AUTH", "FARCALL_TOKEN",
                "GLOBUS_COMPUTE_CLIENT_ID", "GLOBUS_COMPUTE_CLIENT_SECRET",
                "FUNCX_SDK_CLIENT_ID", "FUNCX_SDK_CLIENT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "client-home"
    monkeypatch.setenv("FARCALL_HOME", str(home))
    monkeypatch.setenv("FARCALL_BASE_URL", service.url)
    manager = NativeLoginManager({"base_url": service.url})
    assert not manager.has_tokens()
    with pytest.raises(FarcallError, match="farcall login"):
        manager.ensure_logged_in()
    manager.finish_flow(_sign_in_over_http(manager.start_flow()))
    stored = json.loads((home / "tokens.json").read_text())
    first = stored["data"][f"{service.url}/auth/"]["funcx_service"]["refresh_token"]

    from farcall import Client

    client = Client()
    assert isinstance(client.login_manager, NativeLoginManager)
    assert client.get_endpoints() == []
    assert client.get_endpoints() == []
    stored = json.loads((home / "tokens.json").read_text())
    latest = stored["data"][f"{service.url}/auth/"]["funcx_service"]["refresh_token"]
    assert latest != first  # refreshed, and the rotated refresh token was kept
    assert manager.userinfo()["preferred_username"] == "bob"

    # Replaying the retired refresh token is refused, and revokes the whole login: the
    # next call cannot refresh and says to log in again.
    answer = requests.post(f"{service.url}/auth/v2/oauth2/token", timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": first,
        "client_id": manager.client_id})
    assert answer.status_code == 400
    with pytest.raises(FarcallError, match="farcall login"):
        client.get_endpoints()

    assert NativeLoginManager({"base_url": service.url}).logout() is True
    assert not NativeLoginManager({"base_url": service.url}).has_tokens()
