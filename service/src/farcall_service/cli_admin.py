"""``farcall server user|token|client|group``: the admin commands, on the database.

They write to the database directly, beside a running service or without one. A
running service caches what a token or a membership stands for for ``cache_ttl``
seconds (5 by default), so a revoked token or a removed user or member stops
working within that time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

db_option = click.option(
    "--db",
    "db_url",
    metavar="URL",
    default=None,
    help="SQLAlchemy database URL [env FARCALL_SERVICE_DB_URL; default: SQLite under "
    "$FARCALL_HOME/service/].",
)


broker_option = click.option(
    "--broker", default=None, metavar="NAME|URL",
    help="The service's broker, as given to 'farcall server start': with result streams "
    "(amqp://...), the identity's broker credentials and queues go too "
    "[env FARCALL_SERVICE_BROKER; default: local].")


def settings_from_env(**overrides: Any) -> Any:
    from farcall_service.settings import Settings

    try:
        return Settings.from_env(**overrides)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@contextmanager
def _store(db_url: str | None) -> Iterator[Any]:
    """The service's database, with admin errors shown as plain messages."""
    from farcall_service.admin import AdminError
    from farcall_service.storage import open_store

    store = open_store(settings_from_env(db_url=db_url).database_url)
    try:
        yield store
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


@click.group("user")
def user() -> None:
    """Manage users."""


password_stdin = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts).",
)


def _read_password(from_stdin: bool) -> str:
    """One line of stdin, or a hidden prompt asked twice: never a command-line argument,
    which other local users could read from the process list."""
    if from_stdin:
        import sys

        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@user.command("add")
@click.argument("name")
@password_stdin
@click.option("--password", "ask_password", is_flag=True,
              help="Prompt for a password, so the user can sign in at the login page.")
@click.option("--admin", "is_admin", is_flag=True,
              help="Let the user open the dashboard's admin pages.")
@db_option
def user_add(name: str, password_stdin: bool, ask_password: bool, is_admin: bool,
             db_url: str | None) -> None:
    """Add a user; prints its id. With a password the user can `farcall login` and sign
    in to the dashboard."""
    from farcall_service import admin

    password = _read_password(password_stdin) if password_stdin or ask_password else None
    with _store(db_url) as store:
        click.echo(admin.add_user(store, name, password, is_admin).id)


@user.command("list")
@db_option
def user_list(db_url: str | None) -> None:
    """List the users: id, created, whether they have a password, name."""
    from datetime import datetime, timezone

    with _store(db_url) as store:
        users = store.list_users()
    if not users:
        click.echo("no users; add one with `farcall server user add NAME`")
        return
    click.echo(f"{'ID':<36}  {'CREATED':<25}  {'PASSWORD':<8}  NAME")
    for found in users:
        created = datetime.fromtimestamp(found.created_at, timezone.utc)
        click.echo(f"{found.id:<36}  {created.isoformat(timespec='seconds'):<25}  "
                   f"{'yes' if found.has_password else 'no':<8}  {found.name}")


@user.command("set-password")
@click.argument("name")
@password_stdin
@db_option
def user_set_password(name: str, password_stdin: bool, db_url: str | None) -> None:
    """Set USER's password (only its scrypt hash is stored)."""
    from farcall_service import admin

    password = _read_password(password_stdin)
    with _store(db_url) as store:
        found, revoked = admin.set_password(store, name, password)
    click.echo(f"password set for {found.name}; their OAuth logins ended ({revoked} live "
               "tokens revoked)")


@user.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True,
              help="Also delete the user's functions and endpoints and fail their unfinished "
              "tasks and those queued on their endpoints.")
@db_option
@broker_option
def user_remove(name: str, force: bool, db_url: str | None, broker: str | None) -> None:
    """Remove USER: their tokens, logins, password, OAuth clients and memberships end.

    Refused while they have functions, endpoints, unfinished tasks or OAuth clients,
    unless --force. A removed user's name is not reused.
    """
    from farcall_service import admin

    settings = settings_from_env(db_url=db_url, broker=broker)
    with _store(db_url) as store:
        who = admin.identities(store, admin.find_user(store, name))
        found, held = admin.remove_user(store, name, force)
        what = f" (and {admin.describe(held)})" if held else ""
        click.echo(f"user {found.name} removed{what}")
        if admin.forget_result_streams(settings, store, who):
            click.echo("their result streams (broker credentials and queues) are removed")


@click.group("client")
def client() -> None:
    """Manage OAuth confidential clients (service accounts)."""


@client.command("create")
@click.argument("user_name")
@click.option("--name", default=None, help="A label for the client.")
@click.option("--json", "as_json", is_flag=True, help="Print {client_id, client_secret} as JSON.")
@db_option
def client_create(user_name: str, name: str | None, as_json: bool, db_url: str | None) -> None:
    """Create a client owned by USER; prints its id and secret (shown once).

    The client acts for USER: its tokens stand for USER, until it is deleted.
    """
    import json

    from farcall_service import admin

    with _store(db_url) as store:
        created, secret = admin.create_client(store, user_name, name)
    if as_json:
        click.echo(json.dumps({"client_id": created.id, "client_secret": secret,
                               "identity_id": created.owner_id}))
        return
    click.echo(f"client id:     {created.id}")
    click.echo(f"client secret: {secret}")
    click.echo(f"acts for:      {created.owner_id}")


@client.command("list")
@click.argument("user_name")
@db_option
def client_list(user_name: str, db_url: str | None) -> None:
    """List the clients USER owns (ids and names; secrets cannot be shown)."""
    from farcall_service import admin

    with _store(db_url) as store:
        for found in admin.list_clients(store, user_name):
            click.echo(f"{found.id}  {found.name}")


@client.command("delete")
@click.argument("client_id")
@db_option
@broker_option
def client_delete(client_id: str, db_url: str | None, broker: str | None) -> None:
    """Delete a client and revoke every token issued to it."""
    from farcall_service import admin

    settings = settings_from_env(db_url=db_url, broker=broker)
    with _store(db_url) as store:
        found = admin.delete_client(store, client_id)
        click.echo(f"client {client_id} deleted")
        if admin.forget_result_streams(settings, store, [found.principal_id]):
            click.echo("its result streams (broker credentials and queues) are removed")


@click.group("token")
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.argument("user_name")
@db_option
def token_create(user_name: str, db_url: str | None) -> None:
    """Create a token for USER (name or id) and print it. It cannot be shown again."""
    from farcall_service import admin

    with _store(db_url) as store:
        click.echo(admin.create_token(store, user_name))


@token.command("list")
@click.argument("user_name", required=False)
@db_option
def token_list(user_name: str | None, db_url: str | None) -> None:
    """List the static tokens of USER (of every user without one): id, created, user.

    The id is the start of the token's hash: the tokens themselves are not kept.
    """
    from datetime import datetime, timezone

    from farcall_service import admin

    with _store(db_url) as store:
        for found in admin.list_tokens(store, user_name):
            created = datetime.fromtimestamp(found.created_at, timezone.utc)
            click.echo(f"{admin.token_id(found.token_hash)}  "
                       f"{created.isoformat(timespec='seconds')}  {found.user_name}")


@token.command("revoke")
@click.argument("token_id", required=False)
@click.option("--token-stdin", is_flag=True,
              help="Read the token itself from the first line of standard input.")
@db_option
def token_revoke(token_id: str | None, token_stdin: bool, db_url: str | None) -> None:
    """Revoke the static token TOKEN_ID (as 'token list' shows it).

    A running service refuses it within its cache lifetime (cache_ttl seconds).
    """
    import sys

    from farcall_service import admin

    if token_stdin:
        token_id = sys.stdin.readline().strip()
    if not token_id:
        raise click.UsageError("give a TOKEN_ID or --token-stdin")
    with _store(db_url) as store:
        found = admin.revoke_token(store, token_id)
    click.echo(f"token {admin.token_id(found.token_hash)} of {found.user_name} revoked")


@click.group("group")
def group() -> None:
    """Manage groups."""


@group.command("add")
@click.argument("name")
@db_option
def group_add(name: str, db_url: str | None) -> None:
    """Add a group; prints its id (use it as register_function(group=...))."""
    from farcall_service import admin

    with _store(db_url) as store:
        click.echo(admin.add_group(store, name).id)


@group.command("add-member")
@click.argument("group_name")
@click.argument("user_name")
@db_option
def group_add_member(group_name: str, user_name: str, db_url: str | None) -> None:
    """Add USER to GROUP (each by name or id)."""
    from farcall_service import admin

    with _store(db_url) as store:
        found, member = admin.add_member(store, group_name, user_name)
    click.echo(f"{member.name} is a member of {found.name} ({found.id})")


@group.command("remove-member")
@click.argument("group_name")
@click.argument("user_name")
@db_option
def group_remove_member(group_name: str, user_name: str, db_url: str | None) -> None:
    """Take USER out of GROUP (each by name or id)."""
    from farcall_service import admin

    with _store(db_url) as store:
        found, member = admin.remove_member(store, group_name, user_name)
    click.echo(f"{member.name} is no longer a member of {found.name} ({found.id})")


@click.group("tasks")
def tasks() -> None:
    """Manage stored tasks."""


@tasks.command("prune")
@click.option("--older-than", "days", type=float, required=True, metavar="DAYS",
              help="Delete tasks that ended more than DAYS ago (0: every ended task).")
@click.option("--user", "user_name", default=None, metavar="USER",
              help="Only USER's tasks (name or id) [default: everyone's].")
@db_option
def tasks_prune(days: float, user_name: str | None, db_url: str | None) -> None:
    """Delete ended tasks with their payloads and results, freeing their owners' stored
    bytes quota. Queued and running tasks are never deleted."""
    from farcall_service import admin

    with _store(db_url) as store:
        count = admin.prune_tasks(store, days, user_name)
    click.echo(f"{count} ended tasks deleted")


#: The groups ``farcall server`` adds.
ADMIN_GROUPS = (user, client, token, group, tasks)
