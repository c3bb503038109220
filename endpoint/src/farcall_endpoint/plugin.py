"""Entry point of farcall-endpoint: the ``farcall endpoint`` commands and two engines.

Kept tiny on purpose: click commands, engines and their dependencies load inside
the hook implementations and factories, so ``farcall --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from farcall.plugins import FarcallPluginManager, hookimpl
from farcall.plugins.types import CliCommandType

from farcall_endpoint.kinds import ENGINES, EngineType


def _process(config: Mapping[str, Any]) -> Any:
    from farcall_endpoint.engines.process import ProcessEngine

    return ProcessEngine(config)


def _thread(config: Mapping[str, Any]) -> Any:
    from farcall_endpoint.engines.thread import ThreadEngine

    return ThreadEngine(config)


@hookimpl
def farcall_addhooks(pluginmanager: FarcallPluginManager) -> None:
    from farcall_endpoint import hookspecs

    pluginmanager.add_hookspecs(hookspecs)
    pluginmanager.add_kind(ENGINES)


@hookimpl
def farcall_engines() -> Iterable[EngineType]:
    return [
        EngineType("process", _process, "a pool of local worker processes (the default)"),
        EngineType("thread", _thread, "threads in the endpoint process"),
    ]


@hookimpl
def farcall_cli_commands() -> Iterable[CliCommandType]:
    from farcall_endpoint.cli import endpoint

    return [CliCommandType("endpoint", endpoint, "configure, start and stop farcall endpoints")]
