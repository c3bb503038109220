"""Entry point of farcall-endpoint: the ``farcall endpoint`` commands, two engines and
the ``farcall`` endpoint link.

Kept tiny on purpose: click commands, engines, links and their dependencies load inside
the hook implementations and factories, so ``farcall --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from farcall.plugins import FarcallPluginManager, hookimpl
from farcall.plugins.types import CliCommandType

from farcall_endpoint.kinds import ENGINES, LINKS, EngineType, LinkType

if TYPE_CHECKING:
    from farcall_endpoint.links.interface import Link, LinkContext


def _process(config: Mapping[str, Any]) -> Any:
    from farcall_endpoint.engines.process import ProcessEngine

    return ProcessEngine(config)


def _thread(config: Mapping[str, Any]) -> Any:
    from farcall_endpoint.engines.thread import ThreadEngine

    return ThreadEngine(config)


def _hand_off(context: LinkContext) -> Link:
    from farcall_endpoint.links.handoff import HandOffLink

    return HandOffLink(context)


@hookimpl
def farcall_addhooks(pluginmanager: FarcallPluginManager) -> None:
    from farcall_endpoint import hookspecs

    pluginmanager.add_hookspecs(hookspecs)
    pluginmanager.add_kind(ENGINES)
    pluginmanager.add_kind(LINKS)


@hookimpl
def farcall_engines() -> Iterable[EngineType]:
    return [
        EngineType("process", _process, "a pool of local worker processes (the default)"),
        EngineType("thread", _thread, "threads in the endpoint process"),
    ]


@hookimpl
def farcall_endpoint_links() -> Iterable[LinkType]:
    return [LinkType("farcall", _hand_off, "the farcall service's hand-off protocol: REST "
                     "registration and heartbeats, claims and results over its WebSocket "
                     "channel or HTTP (the default)")]


@hookimpl
def farcall_cli_commands() -> Iterable[CliCommandType]:
    from farcall_endpoint.cli import endpoint

    return [CliCommandType("endpoint", endpoint, "configure, start and stop farcall endpoints")]
