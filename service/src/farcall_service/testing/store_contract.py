"""The contract every store must meet, one suite per protocol of
:mod:`farcall_service.storage.interface`.

Use it from a store plugin's tests by subclassing and overriding the ``store``
fixture with a new, empty store for each test::

    import pytest
    from farcall_service.storage import open_store
    from farcall_service.testing.store_contract import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            store = open_store(f"mystore://{tmp_path}/db")
            yield store
            store.close()

:class:`StoreContract` runs every suite; each suite also runs alone
(:class:`IdentityStoreContract`, :class:`OAuthStoreContract`,
:class:`CatalogueStoreContract`, :class:`TaskStoreContract`,
:class:`HandOffStoreContract`, :class:`QuotaStoreContract`,
:class:`OutboxStoreContract`, :class:`BrowseStoreContract`,
:class:`RetentionStoreContract`). The suites make their
:class:`CancelStoreContract`). The suites make their
records through the store's own methods, so each needs a whole
:class:`~farcall_service.storage.interface.Store`.
"""

from __future__ import annotations

from farcall_service.storage.interface import (
    BrowseStore,
    CatalogueStore,
    IdentityStore,
    OAuthStore,
    RetentionStore,
    Store,
    TaskStore,
)
from farcall_service.testing.store_browse_contract import BrowseStoreContract
from farcall_service.testing.store_cancel_contract import CancelStoreContract
from farcall_service.testing.store_catalogue_contract import CatalogueStoreContract
from farcall_service.testing.store_handoff_contract import HandOffStoreContract
from farcall_service.testing.store_identity_contract import (
    IdentityStoreContract,
    OAuthStoreContract,
)
from farcall_service.testing.store_outbox_contract import OutboxStoreContract
from farcall_service.testing.store_quota_contract import QuotaStoreContract
from farcall_service.testing.store_retention_contract import RetentionStoreContract
from farcall_service.testing.store_task_contract import TaskStoreContract

__all__ = [
    "BrowseStoreContract",
    "CancelStoreContract",
    "CatalogueStoreContract",
    "HandOffStoreContract",
    "IdentityStoreContract",
    "OAuthStoreContract",
    "OutboxStoreContract",
    "QuotaStoreContract",
    "RetentionStoreContract",
    "StoreContract",
    "TaskStoreContract",
]


class StoreContract(
    IdentityStoreContract,
    OAuthStoreContract,
    CatalogueStoreContract,
    TaskStoreContract,
    HandOffStoreContract,
    QuotaStoreContract,
    OutboxStoreContract,
    BrowseStoreContract,
    RetentionStoreContract,
    CancelStoreContract,
):
    """Every suite: subclass and override ``store``."""

    def test_the_store_has_every_method_of_each_protocol(self, store: Store) -> None:
        for protocol in (IdentityStore, OAuthStore, CatalogueStore, TaskStore, BrowseStore,
                         RetentionStore, Store):
            assert isinstance(store, protocol), protocol.__name__
