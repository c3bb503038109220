"""farcall's plugin layer, built on pluggy.

``PROJECT_NAME`` is both the pluggy project name and the entry-point group, so a
distribution becomes a farcall plugin by declaring::

    [project.entry-points.farcall]
    my_plugin = "my_package.plugin"

and implementing hooks from :mod:`farcall.plugins.hookspecs` with :data:`hookimpl`.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "farcall"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

from farcall.plugins.manager import FarcallPluginManager, get_plugin_manager  # noqa: E402
from farcall.plugins.types import (  # noqa: E402
    CliCommandType,
    EngineType,
    LoginManagerType,
    ResultCacheType,
    SerializationStrategyType,
    TransportType,
)

__all__ = [
    "PROJECT_NAME",
    "CliCommandType",
    "EngineType",
    "FarcallPluginManager",
    "LoginManagerType",
    "ResultCacheType",
    "SerializationStrategyType",
    "TransportType",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
]
