# mypy: disable-error-code="empty-body"
# (a hookspec is a signature and a docstring; plugins provide the bodies)
"""The hooks farcall-endpoint adds to farcall's plugin manager (``farcall_addhooks``)."""

from __future__ import annotations

from collections.abc import Iterable

from farcall.plugins.markers import hookspec

from farcall_endpoint.kinds import EngineType, LinkType


@hookspec
def farcall_engines() -> Iterable[EngineType]:
    """Declare execution engines for endpoints, selected by name in an endpoint's
    config (``[engine] type = "NAME"``). Collects from every plugin."""


@hookspec
def farcall_endpoint_links() -> Iterable[LinkType]:
    """Declare links between an endpoint and its service (see
    :mod:`farcall_endpoint.links.interface`), selected by the name the service gives
    in its answer to the endpoint's registration, else by the endpoint's config
    (``link = "NAME"``, default ``"farcall"``). Collects from every plugin; two
    plugins declaring one name is an error naming both."""
