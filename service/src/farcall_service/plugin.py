"""Entry point of farcall-service: mounts ``farcall server`` through the core's hook,
adds the service's plugin kinds, and provides the SQL store, the ``local`` broker and
the ``folder`` and ``postgresql`` blob stores.

Kept tiny on purpose; the command group imports FastAPI and SQLAlchemy only when one
of its commands runs, a store or broker module when one is built.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from farcall.plugins import FarcallPluginManager, hookimpl
from farcall.plugins.types import CliCommandType

from farcall_service.kinds import BLOB_STORES, BROKERS, STORES, BlobStoreType, BrokerType, StoreType

if TYPE_CHECKING:
    from farcall_service.blobs.interface import BlobStore
    from farcall_service.brokers.interface import Broker
    from farcall_service.settings import Settings
    from farcall_service.storage.interface import Store


def ensure_registered(pluginmanager: FarcallPluginManager) -> None:
    """Register this plugin in a manager that did not load entry points (an embedding
    application's, or autoload disabled): the service always has its own store and
    broker."""
    import sys

    plugin = sys.modules[__name__]
    if not pluginmanager.is_registered(plugin) and not pluginmanager.has_plugin("service"):
        pluginmanager.register(plugin, name="service")


@hookimpl
def farcall_addhooks(pluginmanager: FarcallPluginManager) -> None:
    from farcall_service import hookspecs

    pluginmanager.add_hookspecs(hookspecs)
    pluginmanager.add_kind(STORES)
    pluginmanager.add_kind(BROKERS)
    pluginmanager.add_kind(BLOB_STORES)


@hookimpl
def farcall_cli_commands() -> Iterable[CliCommandType]:
    from farcall_service.cli import server

    return [CliCommandType("server", server, "run and administer the farcall web service")]


@hookimpl
def farcall_stores() -> Iterable[StoreType]:
    return [
        StoreType(
            "sql",
            ("sqlite", "postgresql"),
            _open_sql_store,
            "SQLite (the embedded default) or PostgreSQL, through SQLAlchemy",
        )
    ]


def _open_sql_store(url: str, *, migrate: bool = True) -> Store:
    from farcall_service.storage.sql import open_sql_store

    return open_sql_store(url, migrate=migrate)


@hookimpl
def farcall_brokers() -> Iterable[BrokerType]:
    return [BrokerType("local", _local_broker,
                       "wake-ups within one service process, the only one on its database")]


def _local_broker(settings: Settings, store: Store) -> Broker:
    from farcall_service.brokers.local import LocalBroker

    return LocalBroker(settings.database_url)


@hookimpl
def farcall_blob_stores() -> Iterable[BlobStoreType]:
    return [
        BlobStoreType("folder", _folder_blobs,
                      "files next to the SQLite database: one service process's disk"),
        BlobStoreType("postgresql", _postgresql_blobs,
                      "large objects in the PostgreSQL database every process reaches"),
    ]


def _folder_blobs(settings: Settings) -> BlobStore:
    from farcall_service.blobs.folder import FolderBlobStore, blob_folder

    return FolderBlobStore(blob_folder(settings))


def _postgresql_blobs(settings: Settings) -> BlobStore:
    from farcall.errors import PluginError

    from farcall_service.blobs.postgresql import PostgresBlobStore

    if not settings.database_url.startswith("postgresql"):
        raise PluginError("the postgresql blob store keeps blobs in the service's database, "
                          "which must then be PostgreSQL (db_url); use blob_store = \"folder\"")
    return PostgresBlobStore(settings.database_url)
