"""The plugin kinds farcall-endpoint owns, and their records. Light on imports: the
entry-point modules of engine and link plugins import it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from farcall.plugins.types import PluginKind

if TYPE_CHECKING:
    from farcall_endpoint.links.interface import Link, LinkContext


@dataclass(frozen=True)
class EngineType:
    """An execution engine that runs an endpoint's tasks.

    ``factory(config)`` receives the ``[engine]`` table of the endpoint's config
    (without ``type``) and returns a :class:`farcall_endpoint.engines.Engine`.
    ``template``, when given, is the commented body of the ``[engine]`` table that
    ``farcall endpoint configure`` writes (after its ``type`` line): the settings a
    user of this engine is likely to change, with ``{workers}`` for the worker count.
    """

    name: str
    factory: Callable[[Mapping[str, Any]], Any]
    description: str = ""
    template: str = ""


@dataclass(frozen=True)
class LinkType:
    """A way for an endpoint to reach its service: register, take tasks, report
    results, heartbeat.

    ``factory(context)`` receives a :class:`farcall_endpoint.links.LinkContext` and
    returns a :class:`farcall_endpoint.links.Link`.
    """

    name: str
    factory: Callable[[LinkContext], Link]
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
LINKS = PluginKind(
    "endpoint link",
    "endpoint links",
    "farcall_endpoint_links",
    LinkType,
    known={"farcall": "farcall-endpoint"},
)
