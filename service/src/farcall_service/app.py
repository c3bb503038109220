"""The application factory: settings and a store in, an ASGI application out.

FastAPI is used because it validates request bodies from type hints and generates
the OpenAPI schema served at ``/openapi.json``, which documents farcall's own routes
and drives the fuzz tests. Its default error bodies are replaced (``errors.py``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from farcall.errors import UnknownPluginError
from farcall.plugins import FarcallPluginManager, get_plugin_manager
from fastapi import FastAPI

import farcall_service
from farcall_service.blobs.interface import BlobStore
from farcall_service.blobs.sweeping import BlobSweeper
from farcall_service.brokers.interface import Broker
from farcall_service.connection_limits import ForwardedClients
from farcall_service.context import ServiceContext
from farcall_service.dashboard import install as install_dashboard
from farcall_service.errors import install_error_handlers
from farcall_service.kinds import BLOB_STORES, BROKERS
from farcall_service.limits import BodySizeLimit
from farcall_service.plugin import ensure_registered
from farcall_service.routes import include_routes
from farcall_service.routes.blobs import is_upload
from farcall_service.settings import Settings
from farcall_service.storage import Store, open_store

log = logging.getLogger(__name__)

DESCRIPTION = """\
A self-hosted service that speaks the Globus Compute REST API, so the official
`globus-compute-sdk` Client works against it, plus farcall's own routes under
`/farcall/v1/`: function search, execution environments, and the endpoint hand-off
protocol. Every route needs `Authorization: Bearer <token>`. Every error answer is
`{"code": "UPPER_SNAKE", "message": "..."}`.
"""


def create_app(settings: Settings | None = None, store: Store | None = None,
               plugin_manager: FarcallPluginManager | None = None) -> FastAPI:
    """Build the service. Without ``store``, open (and migrate) ``settings.database_url``;
    the broker named by ``settings.broker`` comes from ``plugin_manager`` (by default
    a new one, with every installed plugin). The broker starts with the application's
    lifespan (``TaskLifecycle.start``)."""
    settings = settings or Settings.from_env()
    pm = plugin_manager or get_plugin_manager()
    owns_store = store is None
    if store is None:
        store = open_store(settings.database_url, plugin_manager=pm)
    try:
        broker = select_broker(pm, settings, store)
        blobs = select_blob_store(pm, settings)
    except BaseException:
        if owns_store:
            store.close()
        raise
    ctx = ServiceContext(settings=settings, store=store, broker=broker, blobs=blobs)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sweeper = BlobSweeper(ctx)
        try:
            await ctx.lifecycle.start()  # a broker that refuses ends the startup here
            sweeper.start()
            yield
        finally:
            try:
                await sweeper.stop()
                await ctx.lifecycle.stop()
            finally:
                ctx.blobs.close()
                ctx.threads.shutdown(wait=False)
                if owns_store:
                    ctx.store.close()

    app = FastAPI(
        title="farcall service",
        version=farcall_service.__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.farcall = ctx
    install_error_handlers(app)
    include_routes(app)
    install_dashboard(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, unlimited=is_upload)
    if settings.trusted_proxies:
        app.add_middleware(ForwardedClients, trusted=settings.trusted_proxies,
                           per_address=settings.max_connections_per_address)
    return app


def select_broker(pm: FarcallPluginManager, settings: Settings, store: Store) -> Broker:
    """The broker ``settings.broker`` names, or whose scheme its URL has (``amqp://``),
    built for this process (not started)."""
    ensure_registered(pm)
    scheme, colon, _rest = settings.broker.partition("://")
    if not colon:
        return pm.select(BROKERS, settings.broker).factory(settings, store)
    by_scheme = {s: record for record in pm.records(BROKERS).values() for s in record.schemes}
    try:
        record = by_scheme[scheme.lower()]
    except KeyError:
        hint = (" It is provided by farcall-broker-rabbitmq: is it installed?"
                if scheme.lower() in {"amqp", "amqps"} else "")
        installed = ", ".join(repr(s) for s in sorted(by_scheme)) or "none"
        raise UnknownPluginError(
            f"no installed farcall broker serves URLs of scheme {scheme!r} "
            f"(installed: {installed}).{hint}") from None
    return record.factory(settings, store)


def select_blob_store(pm: FarcallPluginManager, settings: Settings) -> BlobStore:
    """The blob store ``settings.blob_store`` names; by default the one every process
    of this database reaches (``postgresql`` for PostgreSQL, else ``folder``)."""
    ensure_registered(pm)
    name = settings.blob_store or (
        "postgresql" if settings.database_url.startswith("postgresql") else "folder")
    return pm.select(BLOB_STORES, name).factory(settings)
