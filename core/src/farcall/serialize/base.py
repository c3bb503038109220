"""The interface every serialization strategy implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar


class SerializationStrategy(ABC):
    """Turns objects into text and back.

    A strategy deals in *bodies*: the :class:`~farcall.serialize.Serializer` adds
    and strips the three-character header (identifier and newline), so a strategy
    can never write a header that is not its own.
    """

    #: The two-character identifier on the wire, for example ``"00"``.
    identifier: ClassVar[str]
    #: True for strategies that handle callables, False for data.
    for_code: ClassVar[bool]

    @abstractmethod
    def dumps(self, obj: Any) -> str:
        """Return the body for ``obj``; raise any exception if it cannot."""

    @abstractmethod
    def loads(self, body: str) -> Any:
        """Return the object a body stands for; raise any exception if it cannot."""


class NestingStrategy(SerializationStrategy):
    """A strategy whose body holds other strategies' payloads (``12``, ``13``, ``10``).

    The :class:`~farcall.serialize.Serializer` reads such bodies through
    :meth:`loads_with`, handing in its own ``deserialize`` so that every inner payload
    passes the same allowlist as the outer one.
    """

    @abstractmethod
    def loads_with(self, body: str, read: Callable[[str], Any]) -> Any:
        """Rebuild the object, reading each inner ``"id\\nbody"`` payload with ``read``."""
