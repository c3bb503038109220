"""Login managers: the core's static-token manager and the chain that picks one.

A login manager is anything with ``ensure_logged_in()``, ``logout()`` and
``get_authorizer()`` (see :class:`farcall.plugins.types.LoginManager`). Managers
written for the User Guide's protocol, which offer ``get_web_client(base_url=...)``
instead of ``get_authorizer()``, work too: the web client's authorizer is used.

Explicit credentials win, then the environment's, then stored logins:
``Client(login_manager=...)``, a manager named by ``login_manager="NAME"``, a token
passed as an argument (``Client(token=...)``); else the ``farcall_login_manager``
firstresult hook chooses: client credentials from the environment, ``FARCALL_TOKEN``,
``farcall login``'s stored tokens, then the ``farcall dev`` profile's token (see
docs/auth.md). ``settings["token_source"]`` says where ``settings["token"]`` came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from farcall.errors import FarcallError
from farcall.plugins.manager import FarcallPluginManager
from farcall.plugins.types import Authorizer, LoginManager
from farcall.sdk.plain_http import check_url

#: ``settings["token_source"]``: a token passed as an argument, which wins over every
#: login manager of the chain; one from ``FARCALL_TOKEN``, which wins over stored
#: logins. Any other token (the ``farcall dev`` profile's) is the chain's last resort.
FROM_ARGUMENT = "argument"
FROM_ENVIRONMENT = "environment"


class StaticTokenAuthorizer:
    """Sends one fixed bearer token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_authorization_header(self) -> str:
        return f"Bearer {self._token}"

    def __repr__(self) -> str:  # never show the token
        return "StaticTokenAuthorizer(<hidden>)"


class StaticTokenLoginManager:
    """Uses a token issued by ``farcall server token create`` or ``farcall dev``."""

    def __init__(self, token: str) -> None:
        self._authorizer = StaticTokenAuthorizer(token)

    def ensure_logged_in(self) -> bool:
        return True

    def logout(self) -> bool:
        return False  # a static token is revoked on the service, not here

    def get_authorizer(self) -> Authorizer:
        return self._authorizer


def static_token_factory(settings: Mapping[str, Any]) -> LoginManager | None:
    token = settings.get("token")
    return StaticTokenLoginManager(token) if token else None


def environment_token_factory(settings: Mapping[str, Any]) -> LoginManager | None:
    """The static token, when it came from ``FARCALL_TOKEN``."""
    if settings.get("token_source") != FROM_ENVIRONMENT:
        return None
    return static_token_factory(settings)


def authorizer_of(login_manager: Any, base_url: str) -> Authorizer:
    """The authorizer of a farcall login manager or of a User Guide style one."""
    if hasattr(login_manager, "get_authorizer"):
        return login_manager.get_authorizer()
    if hasattr(login_manager, "get_web_client"):
        return login_manager.get_web_client(base_url=base_url).authorizer
    raise TypeError(
        f"{type(login_manager).__name__} is not a login manager: it needs get_authorizer() "
        "or get_web_client(base_url=...)"
    )


def auth_base_url(settings: Mapping[str, Any]) -> str:
    """The OAuth2 provider the auth plugins talk to, ending in ``/``.

    ``settings["auth_url"]``, else ``FARCALL_AUTH_URL``, else
    ``GLOBUS_SDK_SERVICE_URL_AUTH`` (what globus-sdk itself reads), else the farcall
    service's own provider at ``<base_url>/auth/``. Plain http is refused beyond
    loopback addresses, as for the service (:mod:`farcall.sdk.plain_http`).
    """
    url = (
        settings.get("auth_url")
        or os.environ.get("FARCALL_AUTH_URL")
        or os.environ.get("GLOBUS_SDK_SERVICE_URL_AUTH")
    )
    if not url:
        base = settings.get("base_url")
        if not base:
            from farcall.sdk.profile import load_profile

            base = load_profile().base_url
        url = str(base).rstrip("/") + "/auth/"
    return check_url(str(url).rstrip("/") + "/", "the OAuth2 provider")


def choose_login_manager(pm: FarcallPluginManager, settings: Mapping[str, Any]) -> LoginManager:
    """The configured manager by name, a token given as an argument, or the first in
    the chain that applies."""
    name = settings.get("login_manager")
    if name:
        manager = pm.get_login_manager(name).factory(settings)
        if manager is None:
            raise FarcallError(f"login manager {name!r} has no credentials to use here")
        return manager
    token = settings.get("token")
    if token and settings.get("token_source") == FROM_ARGUMENT:
        return StaticTokenLoginManager(token)
    manager = pm.login_manager_for(settings)
    if manager is not None:
        return manager
    raise FarcallError(
        "no credentials found: start `farcall dev`, set FARCALL_TOKEN (and FARCALL_BASE_URL), "
        "log in with `farcall login`, or pass Client(login_manager=...)"
    )
