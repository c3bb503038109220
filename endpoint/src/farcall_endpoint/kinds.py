"""The plugin kinds farcall-endpoint owns, and their records. Light on imports: the
entry-point modules of engine plugins import it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from farcall.plugins.types import PluginKind


@dataclass(frozen=True)
class EngineType:
    """An execution engine that runs an endpoint's tasks.

    ``factory(config)`` receives the ``[engine]`` table of the endpoint's config
    (without ``type``) and returns a :class:`farcall_endpoint.engines.Engine`.
    """

    name: str
    factory: Callable[[Mapping[str, Any]], Any]
    description: str = ""


ENGINES = PluginKind(
    "engine",
    "engines",
    "farcall_engines",
    EngineType,
    known={
        "process": "farcall-endpoint",
        "thread": "farcall-endpoint",
        "parsl": "farcall-engine-parsl",
        "dask": "farcall-engine-dask",
    },
)
