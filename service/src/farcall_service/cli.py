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
    """Run the farcall web service and manage its users, tokens and groups."""


@server.command("start")
@click.option("--host", default=None, help="Address to bind [default: 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [default: 5000].")
@db_option
@click.option("--max-body-bytes", type=int, default=None,
              help="Largest request body (413 above).")
@click.option("--rate-limit", type=int, default=None,
              help="Requests per identity per window; 0 = off.")
@click.option("--rate-window", type=float, default=None, help="Rate limit window in seconds.")
@click.option("--offline-timeout", type=float, default=None,
              help="Seconds of silence after which an endpoint is reported offline.")
@click.option("--requeue-timeout", type=float, default=None,
              help="Seconds of silence after which an endpoint's claimed tasks are requeued.")
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR.")
def start(**options: Any) -> None:
    """Start the service (runs database migrations first)."""
    import logging

    import uvicorn

    from farcall_service.app import create_app

    settings = _settings(**options)
    level = settings.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    logging.getLogger("farcall_service").info(
        "farcall service on http://%s:%d, database %s",
        settings.host,
        settings.port,
        _redacted(settings.database_url),
    )
    # Long-polling claims would otherwise hold a graceful shutdown for their whole wait;
    # an endpoint whose claim is cut short simply reconnects.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=level.lower(),
        timeout_graceful_shutdown=5,
    )


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@server.group("user")
def user() -> None:
    """Manage users."""


@user.command("add")
@click.argument("name")
@db_option
def user_add(name: str, db_url: str | None) -> None:
    """Add a user; prints its id."""
    from farcall_service import admin

    with _store(db_url) as store:
        click.echo(admin.add_user(store, name).id)


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
