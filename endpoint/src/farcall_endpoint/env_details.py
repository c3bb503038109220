"""What a result's ``details`` say of the process that produced it.

The official endpoint puts its workers' ``os``, ``python_version``, ``dill_version``
and ``globus_compute_sdk_version`` (its ``get_env_details()``) and the ``endpoint_id``
in every result's details, and the official SDK compares the Python and dill versions
with its own: a warning names both when they differ, which is the first thing to
check when a function cannot be deserialized on the other side. Without those keys it
warns of "Python UnknownPy/Dill UnknownDill at endpoint <unknown>" on every result.
"""

from __future__ import annotations

import importlib.metadata
import platform
from functools import cache

from farcall_endpoint import __version__

__all__ = ["env_details"]

#: ``dill_version`` where dill is not installed: the SDK's warning then says so.
NO_DILL = "not installed"


def _installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@cache
def env_details() -> dict[str, str]:
    """This process's versions, read once (from the installed distributions' metadata,
    so nothing is imported for them). ``globus_compute_sdk_version`` is the official
    SDK's version where workers have it (``farcall-endpoint[globus-compute]``), else
    this endpoint's, marked ``farcall-endpoint-`` as farcall's SDK marks its own."""
    return {
        "os": platform.platform(),
        "python_version": platform.python_version(),
        "dill_version": _installed("dill") or NO_DILL,
        "globus_compute_sdk_version": (_installed("globus-compute-sdk")
                                       or f"farcall-endpoint-{__version__}"),
    }
