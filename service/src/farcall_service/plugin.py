"""Entry point of farcall-service: mounts ``farcall server`` through the core's hook.

Kept tiny on purpose; the command group imports FastAPI and SQLAlchemy only when one
of its commands runs.
"""

from __future__ import annotations

from collections.abc import Iterable

from farcall.plugins import FarcallPluginManager, hookimpl
from farcall.plugins.types import CliCommandType

from farcall_service.kinds import BROKERS, STORES


@hookimpl
def farcall_addhooks(pluginmanager: FarcallPluginManager) -> None:
    from farcall_service import hookspecs

    pluginmanager.add_hookspecs(hookspecs)
    pluginmanager.add_kind(STORES)
    pluginmanager.add_kind(BROKERS)


@hookimpl
def farcall_cli_commands() -> Iterable[CliCommandType]:
    from farcall_service.cli import server

    return [CliCommandType("server", server, "run and administer the farcall web service")]
