"""The records that registration hooks yield, and the interfaces they build.

Each plugin kind is a small frozen dataclass: a ``name`` to select it by, and a
``factory`` that builds the object. Factories are where heavy imports belong, so
that listing what is installed never imports dill, cloudpickle or globus-sdk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    import click

    from farcall.sdk.channel import Channel, Fallback, PushHandler
    from farcall.serialize.base import SerializationStrategy
    from farcall.serialize.registry import StrategyRegistry

R = TypeVar("R")


def record_name(record: Any) -> str:
    """The name most records are selected by."""
    return str(record.name)


@dataclass(frozen=True)
class PluginKind(Generic[R]):
    """A kind of plugin: the registration hook that declares its records, their type,
    and what a record is selected by.

    The core defines its own kinds (:mod:`farcall.plugins.kinds`); a distribution
    that owns a kind (engines in farcall-endpoint, stores in farcall-service) adds
    it with :meth:`~farcall.plugins.manager.FarcallPluginManager.add_kind` from its
    ``farcall_addhooks`` implementation, beside its hookspecs. ``known`` maps names
    to the first-party distributions that provide them, so an unknown name says
    what to install.
    """

    name: str
    plural: str
    hook: str
    record_type: type[R]
    key: Callable[[R], str] = record_name
    known: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SerializationStrategyType:
    """A serialization strategy, known by its two-character wire identifier.

    ``factory`` receives the :class:`~farcall.serialize.registry.StrategyRegistry`
    so that combining strategies can reach the others; most ignore it.
    ``read_only`` strategies deserialize old payloads but are never chosen to
    serialize (the deprecated identifiers of the wire format). ``data_only``
    strategies build plain data when they read and can run no code (JSON): the SDK
    reads results from endpoints it does not trust only in these.
    """

    identifier: str
    name: str
    for_code: bool
    factory: Callable[[StrategyRegistry], SerializationStrategy]
    read_only: bool = False
    description: str = ""
    data_only: bool = False

    def __post_init__(self) -> None:
        ident = self.identifier
        if len(ident) != 2 or not ident.isascii() or not ident.isprintable() or ":" in ident:
            raise ValueError(
                f"strategy identifier {ident!r} of {self.name} must be two printable ASCII "
                "characters other than ':'"
            )


@runtime_checkable
class Authorizer(Protocol):
    """What a login manager hands out: globus-sdk's authorizers fit this shape."""

    def get_authorization_header(self) -> str | None: ...


@runtime_checkable
class LoginManager(Protocol):
    """Serves credentials to a Client, after the protocol in the User Guide.

    ``ensure_logged_in()`` gets usable credentials (or fails saying how to);
    ``logout()`` forgets them; ``get_authorizer()`` returns what signs each request.
    The guide's managers, which offer ``get_web_client(base_url=...)`` instead of
    ``get_authorizer()``, are accepted too (see ``farcall.sdk.login.authorizer_of``).
    """

    def ensure_logged_in(self) -> Any: ...

    def logout(self) -> Any: ...

    def get_authorizer(self) -> Authorizer: ...


@dataclass(frozen=True)
class LoginManagerType:
    """A way to log in, selectable by ``name``. ``factory(settings)`` returns a
    manager, or None when it has no credentials of its kind here."""

    name: str
    factory: Callable[[Mapping[str, Any]], LoginManager | None]
    description: str = ""


@runtime_checkable
class ResultCache(Protocol):
    """Keeps completed task documents so results are not fetched twice."""

    def get(self, task_id: str) -> dict[str, Any] | None: ...

    def put(self, task_id: str, document: dict[str, Any]) -> None: ...

    def clear(self) -> None: ...


@dataclass(frozen=True)
class ResultCacheType:
    """A result cache backend; ``factory(settings)`` builds it."""

    name: str
    factory: Callable[[Mapping[str, Any]], ResultCache]
    description: str = ""


@runtime_checkable
class Transport(Protocol):
    """Carries SDK calls to the service and returns the decoded JSON answer.

    ``request`` raises :class:`~farcall.sdk.errors.FarcallAPIError` for an error
    answer and :class:`~farcall.sdk.errors.ServiceUnreachable` when the service does
    not answer; ``timeout`` (seconds) bounds one request, None meaning the
    transport's default. ``open_channel`` opens the WebSocket channel at ``path``
    (``farcall.sdk.channel``), which falls back to ``fallback`` over plain requests
    when the service has none; a transport that carries no channels returns None and
    every call goes through ``request``.
    """

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any: ...

    def open_channel(
        self, path: str, fallback: Fallback, on_push: PushHandler | None = None
    ) -> Channel | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class TransportType:
    """A transport; ``factory(base_url, authorizer, settings)`` builds it."""

    name: str
    factory: Callable[[str, Authorizer | None, Mapping[str, Any]], Transport]
    description: str = ""


@dataclass(frozen=True)
class CliCommandType:
    """A ``click`` command or group mounted under the ``farcall`` command."""

    name: str
    command: click.Command
    description: str = field(default="")
