"""``farcall server``: run the service and administer its database.

Only click is imported at module level; the web stack and SQLAlchemy load inside the
command that needs them, so ``farcall --help`` stays fast. The admin commands are in
:mod:`farcall_service.cli_admin`.
"""

from __future__ import annotations

from typing import Any

import click

from farcall_service.cli_admin import ADMIN_GROUPS, db_option, settings_from_env

#: The one log line format of the service, its web server and its libraries.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@click.group("server")
def server() -> None:
    """Run the farcall web service and manage its users, tokens, clients and groups."""


@server.command("start")
@click.option("--host", default=None, help="Address to bind [default: 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [default: 5000].")
@db_option
@click.option("--broker", default=None, metavar="NAME|URL",
              help="The broker that moves tasks and results, by plugin name or URL "
              "(amqp://user:pass@host:5672/vhost: RabbitMQ, for several service processes) "
              "[env FARCALL_SERVICE_BROKER; default: local, one service process per database].")
@click.option("--max-body-bytes", type=int, default=None,
              help="Largest request body (413 above).")
@click.option("--blob-store", default=None, metavar="NAME",
              help="Where large results and payloads are kept: folder, postgresql, or an "
              "installed plugin [default: postgresql for a PostgreSQL database, else folder].")
@click.option("--max-result-size", type=int, default=None,
              help="Largest result or payload in bytes, at most 1 GiB; a larger result "
              "fails with MaxResultSizeExceeded [default: 1 GiB].")
@click.option("--max-json-depth", type=int, default=None,
              help="Deepest nesting of a free-form JSON field, 1 to 128 [default: 32].")
@click.option("--max-field-bytes", type=int, default=None,
              help="Largest free-form field: metadata, details, descriptions (413 above).")
@click.option("--max-tasks-per-submission", type=int, default=None,
              help="Tasks in one submission (413 above); 0 = no cap [default: 2000].")
@click.option("--max-queued-tasks-per-user", type=int, default=None,
              help="Unfinished tasks per user (429 above); 0 = off [default: 1000000].")
@click.option("--max-stored-bytes-per-user", type=int, default=None,
              help="Payload and result bytes stored per user (413 above); 0 = off "
              "[default: 10 GiB].")
@click.option("--rate-limit", type=int, default=None,
              help="Requests per identity per window; 0 = off.")
@click.option("--rate-window", type=float, default=None, help="Rate limit window in seconds.")
@click.option("--offline-timeout", type=float, default=None,
              help="Seconds of silence after which an endpoint is reported offline.")
@click.option("--requeue-timeout", type=float, default=None,
              help="Seconds of silence after which an endpoint's claimed tasks are requeued.")
@click.option("--result-retention", type=float, default=None, metavar="SECONDS",
              help="Keep ended tasks and their results this long, then delete them; "
              "0 = for ever [env FARCALL_SERVICE_RESULT_RETENTION; default: 1209600, "
              "14 days].")
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
    from uvicorn._compat import asyncio_run  # what Server.run runs on; uvicorn is pinned

    from farcall_service import logredact
    from farcall_service.app import create_app
    from farcall_service.brokers.interface import BrokerError
    from farcall_service.connection_limits import ConnectionLimits, protocol_class

    settings = settings_from_env(**options)
    try:
        limits = ConnectionLimits(settings)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    level = settings.log_level.upper()
    logging.basicConfig(level=level, format=LOG_FORMAT)
    if level != "DEBUG":  # each migration step at INFO tells an operator nothing
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        app = create_app(settings)
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
        log_config=None,  # uvicorn's loggers go through the root handler: one format
    )
    logredact.install()  # after uvicorn.Config, which configures its loggers
    served = uvicorn.Server(config)

    async def serve() -> None:
        # The broker starts on the loop that serves, before serving: a refusal
        # (another service on the database, RabbitMQ away) is a plain error, and
        # the lifespan's start finds it started.
        await app.state.farcall.lifecycle.start_broker()
        await served.serve()

    try:
        asyncio_run(serve(), loop_factory=config.get_loop_factory())  # as Server.run
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:  # uvicorn stopped in order, then re-raised the Ctrl-C
        return
    if not served.started:  # the startup failed (uvicorn logged why)
        raise SystemExit(3)


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


for _group in ADMIN_GROUPS:
    server.add_command(_group)
