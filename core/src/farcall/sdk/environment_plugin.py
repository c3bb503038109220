"""The core's link of the login chain for ``FARCALL_TOKEN``: before stored logins.

A token in the environment was set for this shell or job, so it wins over what
``farcall login`` stored for everyone. It is ``tryfirst`` but registered with the
core's defaults, before any installed plugin, so client credentials from the
environment (``tryfirst`` too, and registered later) are still asked first, as the
User Guide says they must be. Tokens from elsewhere (the ``farcall dev`` profile)
are :mod:`farcall.sdk.builtin_plugin`'s, last in the chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from farcall.plugins import hookimpl
from farcall.plugins.types import LoginManager


@hookimpl(tryfirst=True)
def farcall_login_manager(settings: Mapping[str, Any]) -> LoginManager | None:
    from farcall.sdk.login import environment_token_factory

    return environment_token_factory(settings)
