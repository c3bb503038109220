"""The ``farcall`` command. Its subcommands come from the ``farcall_cli_commands`` hook."""

from __future__ import annotations

import sys

import click

from farcall.errors import FarcallError

_META_KEY = "farcall.plugin_commands"


class PluginCommands(click.Group):
    """A group whose commands are collected from plugins, once per invocation.

    The commands live in the invocation's context, not on the group: ``cli`` is a
    module global, and caching on it would keep the plugins of the first call for the
    life of the process (embedding applications, tests).
    """

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        if _META_KEY not in ctx.meta:
            from farcall.plugins import get_plugin_manager

            ctx.meta[_META_KEY] = {
                name: rec.command for name, rec in get_plugin_manager().cli_commands().items()
            }
        return ctx.meta[_META_KEY]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands(ctx)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugin_commands(ctx).get(cmd_name)


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
