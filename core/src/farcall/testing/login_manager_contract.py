"""The contract every login manager plugin must meet.

Use it from a plugin's tests by subclassing, naming the manager and overriding the
two fixtures that say where its credentials come from::

    from farcall.testing.login_manager_contract import LoginManagerContract

    class TestMyLogin(LoginManagerContract):
        name = "mine"

        @pytest.fixture
        def settings(self, service_url, monkeypatch):
            ...  # put credentials where the manager looks; return the Client's settings

        @pytest.fixture
        def no_credentials(self, monkeypatch):
            ...  # take them away; return settings under which the manager has none

The manager is built through the installed plugins, by name (``login_manager="mine"``)
and through the ``farcall_login_manager`` chain, as a Client builds it. When
``settings`` has a ``base_url``, the header it signs requests with is shown to that
service, which must accept it.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, cast

import pytest

from farcall.plugins import get_plugin_manager
from farcall.plugins.manager import FarcallPluginManager
from farcall.plugins.types import LoginManager, LoginManagerType
from farcall.sdk.login import authorizer_of

ChainLink = Callable[..., "LoginManager | None"]


class LoginManagerContract:
    """Subclass, set ``name``, and override ``settings`` and ``no_credentials``."""

    name: ClassVar[str]

    @pytest.fixture
    def plugin_manager(self) -> FarcallPluginManager:
        return get_plugin_manager()

    @pytest.fixture
    def settings(self) -> dict[str, Any]:
        """The Client's settings when this manager's credentials are present."""
        raise NotImplementedError("override the settings fixture")

    @pytest.fixture
    def no_credentials(self) -> dict[str, Any]:
        """Settings (and environment) under which this manager has no credentials.
        Never requested together with ``settings``: both may set the environment."""
        raise NotImplementedError("override the no_credentials fixture")

    @pytest.fixture
    def record(self, plugin_manager: FarcallPluginManager) -> LoginManagerType:
        return plugin_manager.get_login_manager(self.name)

    @pytest.fixture
    def manager(self, record: LoginManagerType, settings: dict[str, Any]) -> LoginManager:
        manager = record.factory(settings)
        assert manager is not None, f"login manager {self.name!r} found no credentials"
        return manager

    def test_record_builds_a_login_manager(
        self, record: LoginManagerType, manager: LoginManager
    ) -> None:
        assert record.name == self.name
        assert isinstance(manager, LoginManager)

    def test_logged_in_it_signs_requests(
        self, manager: LoginManager, settings: dict[str, Any]
    ) -> None:
        manager.ensure_logged_in()
        authorizer = authorizer_of(manager, str(settings.get("base_url", "")))
        header = authorizer.get_authorization_header()
        assert isinstance(header, str) and header.startswith("Bearer ") and len(header) > 7
        base_url = settings.get("base_url")
        if base_url:
            assert _status(f"{base_url}/v2/endpoints", header) == 200

    def test_logout_forgets_what_it_stored(
        self, record: LoginManagerType, manager: LoginManager, settings: dict[str, Any]
    ) -> None:
        """``logout()`` is true when it forgot stored credentials: then the manager
        has none until the next login. False means nothing was stored here (a token
        or a secret from the settings or the environment stays usable)."""
        manager.ensure_logged_in()
        forgot = manager.logout()
        again = record.factory(settings)
        if forgot:
            assert again is None, "logged out, yet the stored credentials are still there"
        else:
            assert again is not None
        assert not manager.logout(), "a second logout found something to forget"

    def test_without_credentials_it_passes(
        self, plugin_manager: FarcallPluginManager, record: LoginManagerType,
        no_credentials: dict[str, Any],
    ) -> None:
        """The factory and this plugin's link of the chain return None to pass."""
        assert record.factory(no_credentials) is None
        link = self._chain_link(plugin_manager)
        if link is not None:
            assert link(settings=no_credentials) is None

    def test_with_credentials_its_link_of_the_chain_answers(
        self, plugin_manager: FarcallPluginManager, settings: dict[str, Any]
    ) -> None:
        link = self._chain_link(plugin_manager)
        if link is None:
            pytest.skip(f"{self.name!r} is chosen by name only: it is not in the chain")
        assert isinstance(link(settings=settings), LoginManager)

    def _chain_link(self, plugin_manager: FarcallPluginManager) -> ChainLink | None:
        """This plugin's ``farcall_login_manager`` implementation, if it has one."""
        owner = None
        for impl in plugin_manager.hook.farcall_login_managers.get_hookimpls():
            records = cast("Iterable[LoginManagerType]", impl.function() or ())
            if any(record.name == self.name for record in records):
                owner = impl.plugin
        for impl in plugin_manager.hook.farcall_login_manager.get_hookimpls():
            if impl.plugin is owner:
                return cast(ChainLink, impl.function)
        return None


def _status(url: str, header: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": header})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
