"""The plugin kinds farcall-service owns, and their records. Light on imports: a
plugin's entry-point module imports it without loading the web stack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from farcall.plugins.types import PluginKind

if TYPE_CHECKING:
    from farcall_service.blobs.interface import BlobStore
    from farcall_service.brokers.interface import Broker
    from farcall_service.settings import Settings
    from farcall_service.storage.interface import Store


class StoreFactory(Protocol):
    """Opens the store at ``url``; with ``migrate`` (the default), first brings its
    schema to the current one, creating it in an empty database."""

    def __call__(self, url: str, *, migrate: bool = True) -> Store: ...


@dataclass(frozen=True)
class StoreType:
    """Where the service keeps its records, chosen by the database URL's scheme.

    ``schemes`` are the URL schemes it serves, without a driver (``"sqlite"``,
    ``"postgresql"`` also serve ``postgresql+psycopg://...``); two stores may not
    claim one scheme. ``factory`` opens the store at a URL.
    """

    name: str
    schemes: tuple[str, ...]
    factory: StoreFactory
    description: str = ""


@dataclass(frozen=True)
class BrokerType:
    """What moves tasks to endpoints, results to whoever waits, and wake-ups between
    service processes; chosen by name (``local`` unless configured) or by the scheme
    of a broker URL.

    ``factory(settings, store)`` builds the broker for one service process, not yet
    started (``farcall_service.brokers.interface.Broker``).
    """

    name: str
    factory: Callable[[Settings, Store], Broker]
    description: str = ""
    #: URL schemes that select this broker (``--broker amqp://...``); its factory then
    #: reads the URL from ``settings.broker``.
    schemes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BlobStoreType:
    """Where results and payloads too large for a message are kept, chosen by name
    (``blob_store`` setting; by default ``postgresql`` when the database is
    PostgreSQL, else ``folder``).

    ``factory(settings)`` builds the store for one service process
    (``farcall_service.blobs.interface.BlobStore``). A store that several service
    processes share must let each read what another wrote.
    """

    name: str
    factory: Callable[[Settings], BlobStore]
    description: str = ""


STORES = PluginKind(
    "store", "stores", "farcall_stores", StoreType, known={"sql": "farcall-service"}
)
BROKERS = PluginKind(
    "broker", "brokers", "farcall_brokers", BrokerType,
    known={"rabbitmq": "farcall-broker-rabbitmq"},
)
BLOB_STORES = PluginKind("blob store", "blob stores", "farcall_blob_stores", BlobStoreType)
