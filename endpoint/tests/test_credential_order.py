"""Which credentials an endpoint signs its requests with: as for the Client, a token
in its own config is the most explicit choice, then the environment, then stored
logins and the ``farcall dev`` profile."""

from __future__ import annotations

from pathlib import Path

import pytest
from farcall.plugins import get_plugin_manager
from farcall.sdk.login import authorizer_of
from farcall_endpoint.config import EndpointConfig
from farcall_endpoint.connect import login


def _bearer(config: EndpointConfig) -> str:
    base_url, manager = login(config, get_plugin_manager())
    return authorizer_of(manager, base_url).get_authorization_header() or ""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FARCALL_HOME", str(tmp_path))
    monkeypatch.setenv("FARCALL_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("FARCALL_TOKEN", "from-the-environment")
    return tmp_path


def test_a_token_in_the_endpoint_s_config_wins_over_farcall_token(env: Path) -> None:
    config = EndpointConfig("ep", home=env, token="from-the-config")
    assert _bearer(config) == "Bearer from-the-config"


def test_farcall_token_is_used_without_one_in_the_config(env: Path) -> None:
    assert _bearer(EndpointConfig("ep", home=env)) == "Bearer from-the-environment"
