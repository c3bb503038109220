# mypy: disable-error-code="empty-body"
# (a hookspec is a signature and a docstring; plugins provide the bodies)
"""The hooks farcall-endpoint adds to farcall's plugin manager (``farcall_addhooks``)."""

from __future__ import annotations

from collections.abc import Iterable

from farcall.plugins.markers import hookspec

from farcall_endpoint.kinds import EngineType


@hookspec
def farcall_engines() -> Iterable[EngineType]:
    """Declare execution engines for endpoints, selected by name in an endpoint's
    config (``[engine] type = "NAME"``). Collects from every plugin."""
