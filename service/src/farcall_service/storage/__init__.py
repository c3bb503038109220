"""Where the service keeps its data: small interfaces, and stores chosen by URL.

A store is a plugin (``farcall_stores``): the one whose schemes contain the database
URL's scheme opens it. farcall-service provides the SQL store, for ``sqlite`` and
``postgresql``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from farcall.errors import PluginConflictError, UnknownPluginError

from farcall_service.storage.interface import Store

if TYPE_CHECKING:
    from farcall.plugins import FarcallPluginManager

    from farcall_service.kinds import StoreType

__all__ = ["Store", "open_store", "store_for_url", "stores_by_scheme", "url_scheme"]


def open_store(
    url: str, *, migrate: bool = True, plugin_manager: FarcallPluginManager | None = None
) -> Store:
    """The store at ``url``, migrated to the current schema unless told not to.

    The store is the installed one that serves the URL's scheme (see
    :func:`store_for_url`); without ``plugin_manager``, a new one is built.
    """
    return store_for_url(url, plugin_manager).factory(url, migrate=migrate)


def url_scheme(url: str) -> str:
    """The scheme a store serves ``url`` by: ``postgresql+psycopg://`` is ``postgresql``."""
    scheme, colon, _rest = url.partition(":")
    if not colon or not scheme:
        raise ValueError("a database URL starts with its scheme, as in sqlite:///path/farcall.db")
    return scheme.partition("+")[0].lower()


def store_for_url(url: str, plugin_manager: FarcallPluginManager | None = None) -> StoreType:
    """The installed store that serves ``url``'s scheme; an unknown scheme raises
    :class:`~farcall.errors.UnknownPluginError` naming the schemes installed."""
    scheme = url_scheme(url)
    stores = stores_by_scheme(plugin_manager)
    try:
        return stores[scheme]
    except KeyError:
        installed = ", ".join(sorted(stores)) or "none"
        raise UnknownPluginError(
            f"no installed farcall store serves database URLs of scheme {scheme!r} "
            f"(installed: {installed}). Use one of those, or install a store plugin "
            f"for {scheme}."
        ) from None


def stores_by_scheme(plugin_manager: FarcallPluginManager | None = None) -> dict[str, StoreType]:
    """Every installed store by the schemes it serves. Two stores that claim one scheme
    are a :class:`~farcall.errors.PluginConflictError` naming both distributions.

    The service's own plugin is registered when ``plugin_manager`` lacks it (entry
    points not loaded): the service always has its SQL store.
    """
    from farcall.plugins import get_plugin_manager

    from farcall_service.kinds import STORES
    from farcall_service.plugin import ensure_registered

    pm = plugin_manager or get_plugin_manager()
    ensure_registered(pm)
    pm.records(STORES)  # every record of the right type, and no name given twice
    hook = getattr(pm.hook, STORES.hook, None)  # None: the service's plugin is blocked
    found: dict[str, tuple[StoreType, str]] = {}
    for impl in reversed(hook.get_hookimpls() if hook is not None else []):
        for record in impl.function() or ():
            for scheme in record.schemes:
                if scheme in found and found[scheme][0].name != record.name:
                    other, owner = found[scheme]
                    raise PluginConflictError(
                        f"two farcall stores serve database URLs of scheme {scheme!r}: "
                        f"{other.name!r} of {pm.describe(owner)} and {record.name!r} of "
                        f"{pm.describe(impl.plugin_name)}. Uninstall one of them, or set "
                        "FARCALL_BLOCK_PLUGINS to skip one."
                    )
                found[scheme] = (record, impl.plugin_name)
    return {scheme: record for scheme, (record, _owner) in found.items()}
