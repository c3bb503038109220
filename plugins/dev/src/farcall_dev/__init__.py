"""farcall plugin: the ``farcall dev`` command."""

from __future__ import annotations

from collections.abc import Iterable

from farcall.plugins import hookimpl
from farcall.plugins.types import CliCommandType


@hookimpl
def farcall_cli_commands() -> Iterable[CliCommandType]:
    from farcall_dev.cli import dev

    return [CliCommandType("dev", dev, "a local service and endpoint")]
