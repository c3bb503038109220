"""Execution engines. The interface engine plugins implement is in :mod:`.interface`."""

from farcall_endpoint.engines.interface import Engine, EngineContext, EngineStatus

__all__ = ["Engine", "EngineContext", "EngineStatus"]
