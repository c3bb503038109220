"""The ``farcall`` command. Its subcommands come from the ``farcall_cli_commands`` hook."""

from __future__ import annotations

import sys
from functools import cached_property

import click

from farcall.errors import FarcallError


class PluginCommands(click.Group):
    """A group whose commands are collected from plugins on first use."""

    @cached_property
    def _plugin_commands(self) -> dict[str, click.Command]:
        from farcall.plugins import get_plugin_manager

        return {name: rec.command for name, rec in get_plugin_manager().cli_commands().items()}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugin_commands.get(cmd_name)


@click.group(cls=PluginCommands)
@click.version_option(package_name="farcall")
def cli() -> None:
    """farcall: run Python functions anywhere, on infrastructure you own."""


def main() -> None:
    try:
        cli(standalone_mode=True)
    except FarcallError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
