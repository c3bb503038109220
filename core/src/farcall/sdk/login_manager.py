"""The login manager protocol of the User Guide, for custom login managers.

A custom login manager only needs ``ensure_logged_in()``, ``logout()`` and either
``get_authorizer()`` or ``get_web_client(base_url=...)`` returning an object with an
``authorizer`` (such as :class:`farcall.sdk.web_client.WebClient`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from farcall.sdk.login import StaticTokenLoginManager


@runtime_checkable
class LoginManagerProtocol(Protocol):
    def ensure_logged_in(self) -> Any: ...

    def logout(self) -> Any: ...

    def get_web_client(self, *, base_url: str) -> Any: ...


#: The name the User Guide imports; farcall's own static-token manager.
LoginManager = StaticTokenLoginManager

__all__ = ["LoginManager", "LoginManagerProtocol"]
