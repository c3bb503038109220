"""The plugin kinds farcall-service owns, and their records. Light on imports: a
plugin's entry-point module imports it without loading the web stack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from farcall.plugins.types import PluginKind

if TYPE_CHECKING:
    from farcall_service.brokers.interface import Broker
    from farcall_service.settings import Settings
    from farcall_service.storage.interface import Store


@dataclass(frozen=True)
class StoreType:
    """Where the service keeps its records, chosen by the database URL's scheme.

    ``schemes`` are the URL schemes it serves, without a driver (``"sqlite"``,
    ``"postgresql"``); ``factory(url)`` opens the store at ``url``, migrated to the
    current schema.
    """

    name: str
    schemes: tuple[str, ...]
    factory: Callable[[str], Store]
    description: str = ""


@dataclass(frozen=True)
class BrokerType:
    """What moves tasks to endpoints, results to whoever waits, and wake-ups between
    service processes; chosen by name (``local`` unless configured).

    ``factory(settings, store)`` builds the broker for one service process, not yet
    started (``farcall_service.brokers.interface.Broker``).
    """

    name: str
    factory: Callable[[Settings, Store], Broker]
    description: str = ""


STORES = PluginKind("store", "stores", "farcall_stores", StoreType)
BROKERS = PluginKind("broker", "brokers", "farcall_brokers", BrokerType)
