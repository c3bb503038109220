# mypy: disable-error-code="empty-body"
# (a hookspec is a signature and a docstring; plugins provide the bodies)
"""The hooks farcall-service adds to farcall's plugin manager (``farcall_addhooks``)."""

from __future__ import annotations

from collections.abc import Iterable

from farcall.plugins.markers import hookspec

from farcall_service.kinds import BlobStoreType, BrokerType, StoreType


@hookspec
def farcall_stores() -> Iterable[StoreType]:
    """Declare stores, each serving the database URL schemes it names. Collects from
    every plugin; two stores that claim one scheme are a conflict."""


@hookspec
def farcall_brokers() -> Iterable[BrokerType]:
    """Declare brokers, selected by name in the service's settings. Collects from
    every plugin."""


@hookspec
def farcall_blob_stores() -> Iterable[BlobStoreType]:
    """Declare blob stores, selected by name in the service's settings
    (``blob_store``). Collects from every plugin."""
