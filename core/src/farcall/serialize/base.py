"""The interface every serialization strategy implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
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
