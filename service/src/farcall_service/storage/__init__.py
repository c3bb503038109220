"""Where the service keeps its data: a small interface and its SQL implementation."""

from farcall_service.storage.interface import Store

__all__ = ["Store", "open_store"]


def open_store(url: str, *, migrate: bool = True) -> Store:
    """The SQL store at ``url``, migrated to the current schema unless told not to."""
    from farcall_service.storage.sql import SqlStore

    store = SqlStore(url)
    if migrate:
        from farcall_service.storage.migrate import upgrade

        upgrade(store.engine)
    return store
