"""The core's own commands: ``farcall plugins``. click is imported only when used."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from farcall.plugins import hookimpl
from farcall.plugins.types import CliCommandType

if TYPE_CHECKING:
    import click


def plugins_command() -> click.Command:
    import click

    @click.command("plugins")
    @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
    def plugins(as_json: bool) -> None:
        """List installed plugins and what each one provides."""
        import json

        from farcall.plugins import get_plugin_manager

        pm = get_plugin_manager()
        kinds = {kind.plural: pm.records(kind) for kind in pm.kinds()}
        plugins = [
            {"name": name, "distribution": pm.distribution_of(name)}
            for name, _plugin in pm.list_name_plugin()
            if name is not None and not name.startswith("_")
        ]
        if as_json:
            listing = {kind: sorted(table) for kind, table in kinds.items()}
            click.echo(json.dumps({"plugins": plugins, **listing}, indent=2))
            return
        click.echo("Plugins:")
        for entry in plugins:
            click.echo(f"  {entry['name']}  ({entry['distribution']})")
        for kind, table in kinds.items():
            click.echo(f"{kind.capitalize()}:")
            for name, record in sorted(table.items()):
                label = getattr(record, "name", name)
                extra = f"  {label}" if label != name else ""
                click.echo(f"  {name}{extra}")

    return plugins


@hookimpl(trylast=True)
def farcall_cli_commands() -> Iterable[CliCommandType]:
    return [CliCommandType("plugins", plugins_command(), "list installed plugins")]
