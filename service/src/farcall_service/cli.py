"""``farcall server``: run the service and administer its database.

Only click is imported at module level; the web stack and SQLAlchemy load inside the
command that needs them, so ``farcall --help`` stays fast.
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


def _settings(**overrides: Any) -> Any:
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

    store = open_store(_settings(db_url=db_url).database_url)
    try:
        yield store
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


@click.group("server")
def server() -> None:
    """Run the farcall web service and manage its users, tokens, clients and groups."""


@server.command("start")
@click.option("--host", default=None, help="Address to bind [default: 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [default: 5000].")
@db_option
@click.option("--broker", default=None, metavar="NAME",
              help="The broker plugin that moves tasks and results [env "
              "FARCALL_SERVICE_BROKER; default: local, one service process per database].")
@click.option("--max-body-bytes", type=int, default=None,
              help="Largest request body (413 above).")
@click.option("--rate-limit", type=int, default=None,
              help="Requests per identity per window; 0 = off.")
@click.option("--rate-window", type=float, default=None, help="Rate limit window in seconds.")
@click.option("--offline-timeout", type=float, default=None,
              help="Seconds of silence after which an endpoint is reported offline.")
@click.option("--requeue-timeout", type=float, default=None,
              help="Seconds of silence after which an endpoint's claimed tasks are requeued.")
@click.option("--max-connections-per-address", type=int, default=None,
              help="Open connections per client address; 0 = no cap.")
@click.option("--trusted-proxies", default=None, metavar="ADDRESSES",
              help="Comma-separated reverse proxies (addresses or networks) whose "
              "X-Forwarded-For names the client.")
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR.")
def start(**options: Any) -> None:
    """Start the service (runs database migrations first)."""
    import logging

    import uvicorn
    from farcall.errors import PluginError

    from farcall_service import logredact
    from farcall_service.app import create_app
    from farcall_service.brokers.interface import BrokerError
    from farcall_service.connection_limits import ConnectionLimits, protocol_class

    settings = _settings(**options)
    try:
        limits = ConnectionLimits(settings)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    level = settings.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(settings)
        # Before serving, so a refusal (another service on the database) is a plain
        # error; the lifespan's start finds it started.
        app.state.farcall.lifecycle.start_broker()
    except (BrokerError, PluginError) as exc:
        raise click.ClickException(str(exc)) from None
    log = logging.getLogger("farcall_service")
    log.info(
        "farcall service on http://%s:%d, database %s",
        settings.host,
        settings.port,
        _redacted(settings.database_url),
    )
    log.debug("settings: %s", {
        name: value for name, value in vars(settings).items() if name not in ("db_url", "home")
    })
    # Long-polling claims would otherwise hold a graceful shutdown for their whole wait;
    # an endpoint whose claim is cut short simply reconnects.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=level.lower(),
        timeout_graceful_shutdown=5,
        ws_max_size=settings.max_body_bytes,  # a channel message is bounded as a body is
        # Head size, head and body timeouts, connections per address (connection_limits).
        http=protocol_class(limits),
        timeout_keep_alive=max(1, round(settings.keep_alive_timeout)),
        # X-Forwarded-For counts only from trusted_proxies (app.py), never from loopback.
        proxy_headers=False,
    )
    logredact.install()  # after uvicorn.Config, which configures its loggers
    served = uvicorn.Server(config)
    served.run()
    if not served.started:  # the startup failed (uvicorn logged why)
        raise SystemExit(3)


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@server.group("user")
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
@db_option
def user_add(name: str, password_stdin: bool, ask_password: bool, db_url: str | None) -> None:
    """Add a user; prints its id. With a password the user can `farcall login`."""
    from farcall_service import admin

    password = _read_password(password_stdin) if password_stdin or ask_password else None
    with _store(db_url) as store:
        click.echo(admin.add_user(store, name, password).id)


@user.command("set-password")
@click.argument("name")
@password_stdin
@db_option
def user_set_password(name: str, password_stdin: bool, db_url: str | None) -> None:
    """Set USER's password (only its scrypt hash is stored)."""
    from farcall_service import admin

    password = _read_password(password_stdin)
    with _store(db_url) as store:
        found = admin.set_password(store, name, password)
    click.echo(f"password set for {found.name}")


@server.group("client")
def client() -> None:
    """Manage OAuth confidential clients (service accounts)."""


@client.command("create")
@click.argument("user_name")
@click.option("--name", default=None, help="A label for the client.")
@click.option("--json", "as_json", is_flag=True, help="Print {client_id, client_secret} as JSON.")
@db_option
def client_create(user_name: str, name: str | None, as_json: bool, db_url: str | None) -> None:
    """Create a client owned by USER; prints its id and secret (shown once).

    The client acts as its own identity (<client id>@clients.farcall), not as USER.
    """
    import json

    from farcall_service import admin

    with _store(db_url) as store:
        created, secret = admin.create_client(store, user_name, name)
    if as_json:
        click.echo(json.dumps({"client_id": created.id, "client_secret": secret,
                               "identity_id": created.principal_id}))
        return
    click.echo(f"client id:     {created.id}")
    click.echo(f"client secret: {secret}")
    click.echo(f"identity:      {created.principal_id}")


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
def client_delete(client_id: str, db_url: str | None) -> None:
    """Delete a client and revoke every token issued to it."""
    from farcall_service import admin

    with _store(db_url) as store:
        admin.delete_client(store, client_id)
    click.echo(f"client {client_id} deleted")


@server.group("token")
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


@server.group("group")
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
