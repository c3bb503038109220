"""Entry point of farcall-auth-client-creds: first in the login chain when set.

Tiny on purpose: globus-sdk is imported only when credentials are actually present.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from farcall.plugins import hookimpl
from farcall.plugins.types import LoginManager, LoginManagerType


def _factory(settings: Mapping[str, Any]) -> LoginManager | None:
    from farcall_auth_client_creds.environment import credentials_from_env

    found = credentials_from_env()
    if found is None:
        return None
    from farcall_auth_client_creds.manager import ClientCredentialsLoginManager

    return ClientCredentialsLoginManager(found, settings)


@hookimpl
def farcall_login_managers() -> Iterable[LoginManagerType]:
    return [
        LoginManagerType(
            "client-credentials",
            _factory,
            "GLOBUS_COMPUTE_CLIENT_ID/_SECRET or FUNCX_SDK_CLIENT_ID/_SECRET",
        )
    ]


@hookimpl(tryfirst=True)
def farcall_login_manager(settings: Mapping[str, Any]) -> LoginManager | None:
    """Client credentials in the environment win over every other credential."""
    return _factory(settings)
