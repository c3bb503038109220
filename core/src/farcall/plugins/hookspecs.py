"""The contract between farcall and its plugins.

Every hook here is a *registration* hook: it is called with no arguments, collects
from every plugin (none stops at the first result), and returns an iterable of
records from :mod:`farcall.plugins.types`. Selection by name, conflict detection and
error messages live in :class:`farcall.plugins.manager.FarcallPluginManager`, so no
code outside the manager calls ``pm.hook`` directly.
"""

from __future__ import annotations

from collections.abc import Iterable

from farcall.plugins import hookspec
from farcall.plugins.types import (
    CliCommandType,
    EngineType,
    LoginManagerType,
    ResultCacheType,
    SerializationStrategyType,
    TransportType,
)


@hookspec
def farcall_serialization_strategies() -> Iterable[SerializationStrategyType]:
    """Declare serialization strategies.

    Return one record per wire identifier this plugin owns (for example ``"00"``
    for dill data). Two plugins that declare the same identifier are a
    :class:`~farcall.errors.PluginConflictError` naming both distributions.
    Records must be cheap to build: import heavy libraries inside ``factory``.
    """


@hookspec
def farcall_login_managers() -> Iterable[LoginManagerType]:
    """Declare ways to log in.

    When no login manager is configured by name, the Client asks each factory in
    hook order (plugins installed later first, the core's defaults last) and uses
    the first that returns a manager: a factory returns None to pass.
    """


@hookspec
def farcall_result_caches() -> Iterable[ResultCacheType]:
    """Declare result cache backends, selected by configured name."""


@hookspec
def farcall_transports() -> Iterable[TransportType]:
    """Declare transports that carry SDK calls to a service, selected by name."""


@hookspec
def farcall_engines() -> Iterable[EngineType]:
    """Declare execution engines for endpoints, selected by name in an endpoint's config."""


@hookspec
def farcall_cli_commands() -> Iterable[CliCommandType]:
    """Declare commands mounted under ``farcall`` (for example ``farcall server``).

    A duplicate command name is a :class:`~farcall.errors.PluginConflictError`.
    """
