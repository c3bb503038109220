# mypy: disable-error-code="empty-body"
# (a hookspec is a signature and a docstring; plugins provide the bodies)
"""The contract between farcall and its plugins.

Almost every hook here is a *registration* hook: it is called with no arguments,
collects from every plugin (none stops at the first result), and returns an iterable
of records from :mod:`farcall.plugins.types`. The exceptions are
:func:`farcall_addhooks`, through which other distributions add kinds of their own,
and :func:`farcall_login_manager`, a ``firstresult`` chain: "which credentials apply
here" has one answer, and the first plugin that has one gives it. Selection by name,
conflict detection and error messages live in
:class:`farcall.plugins.manager.FarcallPluginManager`, so no code outside the manager
calls ``pm.hook`` directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from farcall.plugins.markers import hookspec
from farcall.plugins.types import (
    CliCommandType,
    LoginManager,
    LoginManagerType,
    ResultCacheType,
    SerializationStrategyType,
    TransportType,
)

if TYPE_CHECKING:
    from farcall.plugins.manager import FarcallPluginManager


@hookspec(historic=True)
def farcall_addhooks(pluginmanager: FarcallPluginManager) -> None:
    """Add the hookspecs and plugin kinds a distribution owns.

    Called once for each plugin as it is registered (a historic hook), before any
    of its records are collected. An implementation calls
    ``pluginmanager.add_hookspecs(module)`` and ``pluginmanager.add_kind(kind)``;
    records of a kind whose owner is not installed are never asked for.
    """


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
    """Declare ways to log in, so that one can be chosen by name.

    ``login_manager="NAME"`` (a Client setting, or an endpoint's config) selects a
    record, and its ``factory(settings)`` builds the manager. When no name is
    configured, :func:`farcall_login_manager` decides instead.
    """


@hookspec(firstresult=True)
def farcall_login_manager(settings: Mapping[str, Any]) -> LoginManager | None:
    """Return the login manager that applies here, or None to pass.

    ``settings`` are the Client's (or the endpoint's) settings: ``base_url``,
    ``token`` and whatever the caller added. Stops at the first non-None result.
    Order: ``tryfirst`` implementations first (client credentials from the
    environment, which the guide says take priority over any other credentials),
    then plugins in reverse registration order, then ``trylast`` ones (the core's
    static token). Raise :class:`~farcall.errors.FarcallError` for credentials that
    are present but unusable, rather than passing silently.
    """


@hookspec
def farcall_result_caches() -> Iterable[ResultCacheType]:
    """Declare result cache backends, selected by configured name."""


@hookspec
def farcall_transports() -> Iterable[TransportType]:
    """Declare transports that carry SDK calls to a service, selected by name."""


@hookspec
def farcall_cli_commands() -> Iterable[CliCommandType]:
    """Declare commands mounted under ``farcall`` (for example ``farcall server``).

    A duplicate command name is a :class:`~farcall.errors.PluginConflictError`.
    """
