"""The login chain: client credentials first, a third party can join, half pairs fail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from farcall.errors import FarcallError
from farcall.plugins import get_plugin_manager, hookimpl
from farcall.sdk.login import StaticTokenLoginManager, choose_login_manager
from farcall_auth_client_creds.environment import credentials_from_env
from farcall_auth_client_creds.manager import ClientCredentialsLoginManager

VARS = ("GLOBUS_COMPUTE_CLIENT_ID", "GLOBUS_COMPUTE_CLIENT_SECRET", "FUNCX_SDK_CLIENT_ID",
        "FUNCX_SDK_CLIENT_SECRET", "FARCALL_AUTH_URL", "GLOBUS_SDK_SERVICE_URL_AUTH")
SETTINGS = {"token": "fc_static", "base_url": "http://127.0.0.1:9"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for var in VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FARCALL_HOME", str(tmp_path))


class ThirdParty:
    """A plugin that logs in from a site-specific credential file, say."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    @hookimpl
    def farcall_login_manager(self, settings: Mapping[str, Any]) -> Any:
        return self.manager if settings.get("site") else None


class Manager:
    def ensure_logged_in(self) -> bool:
        return True

    def logout(self) -> bool:
        return False

    def get_authorizer(self) -> Any:
        return StaticTokenLoginManager("fc_site").get_authorizer()


def test_a_third_party_joins_the_chain_before_the_static_token() -> None:
    pm = get_plugin_manager()
    mine = Manager()
    pm.register(ThirdParty(mine), name="site_login")
    assert choose_login_manager(pm, {**SETTINGS, "site": True}) is mine
    assert isinstance(choose_login_manager(pm, SETTINGS), StaticTokenLoginManager)
    chain = pm.login_manager_chain()
    assert chain[0] == "auth_client_creds" and chain[-1] == "farcall.sdk.builtin_plugin"
    assert chain.index("site_login") < chain.index("farcall.sdk.builtin_plugin")


def test_client_credentials_take_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    pm = get_plugin_manager()
    pm.register(ThirdParty(Manager()), name="site_login")
    monkeypatch.setenv("FUNCX_SDK_CLIENT_ID", "funcx-id")
    monkeypatch.setenv("FUNCX_SDK_CLIENT_SECRET", "funcx-secret")
    manager = choose_login_manager(pm, {**SETTINGS, "site": True})
    assert isinstance(manager, ClientCredentialsLoginManager)
    assert manager.credentials.client_id == "funcx-id"
    assert manager.auth_url == "http://127.0.0.1:9/auth/"
    monkeypatch.setenv("GLOBUS_COMPUTE_CLIENT_ID", "compute-id")
    monkeypatch.setenv("GLOBUS_COMPUTE_CLIENT_SECRET", "compute-secret")
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", "https://auth.example.org")
    manager = choose_login_manager(pm, SETTINGS)
    assert manager.credentials.client_id == "compute-id"
    assert manager.auth_url == "https://auth.example.org/"
    assert "compute-secret" not in repr(manager) + repr(manager.credentials)


@pytest.mark.parametrize("present,missing", [
    ("GLOBUS_COMPUTE_CLIENT_ID", "GLOBUS_COMPUTE_CLIENT_SECRET"),
    ("GLOBUS_COMPUTE_CLIENT_SECRET", "GLOBUS_COMPUTE_CLIENT_ID"),
    ("FUNCX_SDK_CLIENT_ID", "FUNCX_SDK_CLIENT_SECRET"),
])
def test_half_a_pair_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, present: str,
                                      missing: str) -> None:
    monkeypatch.setenv(present, "value")
    with pytest.raises(FarcallError, match=f"{present} is set but {missing} is not"):
        choose_login_manager(get_plugin_manager(), SETTINGS)


def test_selection_by_name_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    pm = get_plugin_manager()
    assert isinstance(choose_login_manager(pm, {**SETTINGS, "login_manager": "static-token"}),
                      StaticTokenLoginManager)
    with pytest.raises(FarcallError, match="no credentials"):
        choose_login_manager(pm, {**SETTINGS, "login_manager": "client-credentials"})
    monkeypatch.setenv("GLOBUS_COMPUTE_CLIENT_ID", "a")
    monkeypatch.setenv("GLOBUS_COMPUTE_CLIENT_SECRET", "b")
    assert credentials_from_env() is not None


def test_no_credentials_at_all_says_what_to_do() -> None:
    with pytest.raises(FarcallError, match="farcall login"):
        choose_login_manager(get_plugin_manager(), {"base_url": "http://127.0.0.1:9"})
