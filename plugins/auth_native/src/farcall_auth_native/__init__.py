"""Entry point of farcall-auth-native: the ``native`` login manager and its commands.

Tiny on purpose: globus-sdk and click load only when a command runs or stored tokens
are looked up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from farcall.plugins import hookimpl
from farcall.plugins.types import CliCommandType, LoginManager, LoginManagerType


def _factory(settings: Mapping[str, Any]) -> LoginManager | None:
    """The native manager when ``farcall login`` stored tokens for this provider."""
    from farcall_auth_native.manager import NativeLoginManager

    manager = NativeLoginManager(settings)
    return manager if manager.has_tokens() else None


@hookimpl
def farcall_login_managers() -> Iterable[LoginManagerType]:
    return [LoginManagerType("native", _factory, "tokens stored by `farcall login`")]


@hookimpl
def farcall_login_manager(settings: Mapping[str, Any]) -> LoginManager | None:
    return _factory(settings)


@hookimpl
def farcall_cli_commands() -> Iterable[CliCommandType]:
    from farcall_auth_native.cli import login, logout, whoami

    return [
        CliCommandType("login", login, "log in: in a browser, by pasting a code, or with "
                       "a device code"),
        CliCommandType("logout", logout, "revoke and forget stored tokens"),
        CliCommandType("whoami", whoami, "show who the stored tokens belong to"),
    ]
