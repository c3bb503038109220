"""farcall: an open, self-hostable function-serving platform for Python.

Importing this package is cheap on purpose: the Client, plugins and their heavy
dependencies (requests, dill, cloudpickle, globus-sdk) load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from farcall.sdk.client import Client
    from farcall.sdk.errors import (
        TaskCancelled,
        TaskExecutionFailed,
        TaskExpired,
        TaskPending,
        UntrustedResultError,
    )
    from farcall.sdk.executor import Executor
    from farcall.sdk.mpi import MPIFunction
    from farcall.sdk.shell import ShellFunction, ShellResult

_LAZY = {
    "Client": "farcall.sdk.client",
    "TaskPending": "farcall.sdk.errors",
    "TaskExecutionFailed": "farcall.sdk.errors",
    "TaskExpired": "farcall.sdk.errors",
    "TaskCancelled": "farcall.sdk.errors",
    "FarcallAPIError": "farcall.sdk.errors",
    "UntrustedResultError": "farcall.sdk.errors",
    "Executor": "farcall.sdk.executor",
    "SerializationError": "farcall.errors",
    "ShellFunction": "farcall.sdk.shell",
    "ShellResult": "farcall.sdk.shell",
    "MPIFunction": "farcall.sdk.mpi",
}

__all__ = ["Client", "Executor", "MPIFunction", "SerializationError", "ShellFunction",
           "ShellResult", "TaskCancelled", "TaskExecutionFailed", "TaskExpired",
           "TaskPending", "UntrustedResultError", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'farcall' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
