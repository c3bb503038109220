"""The login chain is a firstresult hook: first non-None manager wins, the core is last."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from farcall.errors import FarcallError
from farcall.plugins import get_plugin_manager, hookimpl
from farcall.sdk.login import StaticTokenLoginManager, auth_base_url, choose_login_manager


class Named:
    def __init__(self, name: str) -> None:
        self.name = name

    def ensure_logged_in(self) -> bool:
        return True

    def logout(self) -> bool:
        return False

    def get_authorizer(self) -> Any:
        return None


def _plugin(answer: Any, **position: bool) -> object:
    class Plugin:
        @hookimpl(**position)
        def farcall_login_manager(self, settings: Mapping[str, Any]) -> Any:
            settings["asked"].append(answer.name if answer else None)  # type: ignore[index]
            return answer

    return Plugin()


def test_first_non_none_wins_in_pluggy_order() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(_plugin(None), name="passes")
    pm.register(_plugin(Named("normal")), name="normal")
    pm.register(_plugin(Named("early"), tryfirst=True), name="early")
    asked: list[Any] = []
    chosen = choose_login_manager(pm, {"token": "fc_x", "asked": asked})
    assert chosen.name == "early" and asked == ["early"]
    pm.unregister(name="early")
    asked.clear()
    assert choose_login_manager(pm, {"token": "fc_x", "asked": asked}).name == "normal"
    assert pm.login_manager_chain()[-1] == "farcall.sdk.builtin_plugin"


def test_the_static_token_answers_last_and_nothing_is_a_clear_error() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(_plugin(None), name="passes")
    assert isinstance(choose_login_manager(pm, {"token": "fc_x", "asked": []}),
                      StaticTokenLoginManager)
    with pytest.raises(FarcallError, match="no credentials found"):
        choose_login_manager(pm, {"asked": []})


def test_auth_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("FARCALL_AUTH_URL", "GLOBUS_SDK_SERVICE_URL_AUTH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FARCALL_ALLOW_INSECURE_HTTP", "1")  # plain http to other hosts
    assert auth_base_url({"base_url": "http://h:1/"}) == "http://h:1/auth/"
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", "https://auth.example/")
    assert auth_base_url({"base_url": "http://h:1"}) == "https://auth.example/"
    monkeypatch.setenv("FARCALL_AUTH_URL", "https://mine.example")
    assert auth_base_url({}) == "https://mine.example/"
    assert auth_base_url({"auth_url": "http://x"}) == "http://x/"
