"""farcall's plugin layer, built on pluggy.

``PROJECT_NAME`` is both the pluggy project name and the entry-point group, so a
distribution becomes a farcall plugin by declaring::

    [project.entry-points.farcall]
    my_plugin = "my_package.plugin"

and implementing hooks from :mod:`farcall.plugins.hookspecs` with :data:`hookimpl`.
A distribution that owns a plugin kind of its own (the endpoint's engines, the
service's stores) adds its hookspecs and a :class:`PluginKind` through
``farcall_addhooks``, as pytest plugins do with ``pytest_addhooks``.
"""

from __future__ import annotations

from farcall.plugins.manager import FarcallPluginManager, get_plugin_manager
from farcall.plugins.markers import PROJECT_NAME, hookimpl, hookspec
from farcall.plugins.types import (
    CliCommandType,
    LoginManagerType,
    PluginKind,
    ResultCacheType,
    SerializationStrategyType,
    TransportType,
)

__all__ = [
    "PROJECT_NAME",
    "CliCommandType",
    "FarcallPluginManager",
    "LoginManagerType",
    "PluginKind",
    "ResultCacheType",
    "SerializationStrategyType",
    "TransportType",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
]
