"""Which credentials the Client uses: explicit arguments, then the environment, then
stored logins (``farcall login``'s tokens, the ``farcall dev`` profile).

Against a real service, with a real ``farcall login`` (the native-app flow driven over
HTTP as a browser would) stored in the Client's ``$FARCALL_HOME``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

pytest.importorskip("farcall_service")
pytest.importorskip("farcall_auth_native")

from farcall import Client  # noqa: E402
from farcall.errors import FarcallError  # noqa: E402
from farcall.plugins import get_plugin_manager  # noqa: E402
from farcall.sdk.login import StaticTokenLoginManager, choose_login_manager  # noqa: E402
from farcall.sdk.profile import load_profile  # noqa: E402
from farcall_auth_native.manager import NativeLoginManager  # noqa: E402
from farcall_testkit.service import ServiceProcess, admin  # noqa: E402

PASSWORD = "alice's password"
CREDENTIAL_VARS = (
    "FARCALL_TOKEN",
    "FARCALL_BASE_URL",
    "FARCALL_AUTH_URL",
    "GLOBUS_SDK_SERVICE_URL_AUTH",
    "GLOBUS_COMPUTE_CLIENT_ID",
    "GLOBUS_COMPUTE_CLIENT_SECRET",
    "FUNCX_SDK_CLIENT_ID",
    "FUNCX_SDK_CLIENT_SECRET",
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    home = tmp_path_factory.mktemp("credentials-service")
    admin(home, "user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    admin(home, "user", "add", "bob")
    with ServiceProcess(home) as svc:
        svc.tokens = {
            name: admin(home, "token", "create", name).splitlines()[-1].strip()
            for name in ("alice", "bob")
        }
        yield svc


@pytest.fixture
def client_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Client's environment with no credentials in it."""
    for var in CREDENTIAL_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FARCALL_HOME", str(tmp_path))
    return tmp_path


def _log_in_as_alice(url: str) -> None:
    """``farcall login`` as alice: the flow's page submitted as a browser would."""
    manager = NativeLoginManager({"base_url": url})
    http = requests.Session()
    page = http.get(manager.start_flow(), timeout=30)
    csrf = re.search(r"name='csrf_token' value='([^']+)'", page.text).group(1)
    fields = dict(re.findall(r"type='hidden' name='(\w+)' value='([^']*)'", page.text))
    fields.update(csrf_token=csrf, username="alice", password=PASSWORD)
    answer = http.post(page.url.split("?")[0], data=fields, allow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text
    manager.finish_flow(parse_qs(urlsplit(answer.headers["location"]).query)["code"][0])


def _endpoint_names(client: Client) -> set[str]:
    return {ep["name"] for ep in client.get_endpoints()}


def test_explicit_then_environment_then_stored_login(
    service: ServiceProcess, client_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FARCALL_BASE_URL", service.url)
    _log_in_as_alice(service.url)
    stored = Client()
    assert isinstance(stored.login_manager, NativeLoginManager)
    stored.transport.request("POST", "/v3/endpoints", json={"endpoint_name": "alice-private"})
    assert _endpoint_names(stored) == {"alice-private"}
    bob = Client(token=service.tokens["bob"]).transport
    bob.request("POST", "/v3/endpoints", json={"endpoint_name": "bob-own"})

    explicit = Client(token=service.tokens["bob"])
    assert isinstance(explicit.login_manager, StaticTokenLoginManager)
    assert _endpoint_names(explicit) == {"bob-own"}, "the argument wins over the stored login"

    monkeypatch.setenv("FARCALL_TOKEN", service.tokens["bob"])
    assert _endpoint_names(Client()) == {"bob-own"}, "the environment wins over it too"
    from_argument = Client(token=service.tokens["alice"])
    assert _endpoint_names(from_argument) == {"alice-private"}, "and the argument over both"

    monkeypatch.delenv("FARCALL_TOKEN")
    assert _endpoint_names(Client()) == {"alice-private"}, "the stored login, last"


def test_an_explicit_token_wins_over_client_credentials(
    client_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("farcall_auth_client_creds")
    monkeypatch.setenv("GLOBUS_COMPUTE_CLIENT_ID", "0d1c0d1c-0000-4000-8000-000000000000")
    monkeypatch.setenv("GLOBUS_COMPUTE_CLIENT_SECRET", "fcs_secret")
    pm = get_plugin_manager()
    settings = {"base_url": "http://127.0.0.1:9", "token": "fc_mine"}
    from_environment = choose_login_manager(pm, {**settings, "token_source": "environment"})
    assert type(from_environment).__name__ == "ClientCredentialsLoginManager", (
        "client credentials come first among the environment's"
    )
    explicit = choose_login_manager(pm, {**settings, "token_source": "argument"})
    assert isinstance(explicit, StaticTokenLoginManager)
    assert explicit.get_authorizer().get_authorization_header() == "Bearer fc_mine"


def test_the_dev_profile_s_token_is_sent_only_to_its_service(
    client_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev_url = "http://127.0.0.1:5999"
    (client_home / "dev.json").write_text(
        json.dumps({"base_url": dev_url, "token": "fc_dev", "endpoint_id": "e" * 8})
    )
    mine = load_profile()
    assert (mine.base_url, mine.token, mine.endpoint_id) == (dev_url, "fc_dev", "e" * 8)
    assert mine.source.endswith("dev.json")
    other = load_profile("http://127.0.0.1:6000")
    assert (other.token, other.endpoint_id) == (None, None)
    monkeypatch.setenv("FARCALL_BASE_URL", "http://localhost:6001")
    assert load_profile().token is None
    with pytest.raises(FarcallError, match="no credentials found"):
        Client()
    monkeypatch.setenv("FARCALL_TOKEN", "fc_env")
    assert (load_profile().token, load_profile().source) == ("fc_env", "environment")
