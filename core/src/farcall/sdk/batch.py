"""A batch of tasks, built locally and submitted with ``Client.batch_run``."""

from __future__ import annotations

import re
import uuid
from typing import Any

from farcall.errors import FarcallError
from farcall.serialize import Serializer

#: Matches exactly the strings ``str(uuid.UUID(...))`` returns; ids the service sent
#: back are checked with it, ten times faster than parsing them.
_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch


def canonical_id(value: Any, what: str) -> str:
    """A UUID given as ``uuid.UUID`` or a string of any case, in canonical form."""
    if type(value) is str and _CANONICAL(value):
        return value
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except (ValueError, AttributeError, TypeError):
        raise FarcallError(f"{what} must be a UUID, not {value!r}") from None


class Batch:
    """Tasks in the order they were added; each may name its own endpoint and function.

    ``task_group_id`` is the group its tasks join; when None, the service makes one
    for the first request of ``batch_run``, and it is set here so that every request
    of the batch joins the same group.
    """

    def __init__(
        self,
        serializer: Serializer,
        *,
        task_group_id: str | None = None,
        resource_specification: dict[str, Any] | None = None,
        result_serializers: list[str] | None = None,
        user_endpoint_config: dict[str, Any] | None = None,
    ) -> None:
        self._serializer = serializer
        self._no_kwargs: str | None = None  # most calls have none: serialized once
        self.tasks: list[tuple[str, str, str]] = []
        self.task_group_id = task_group_id
        self.resource_specification = resource_specification
        self.result_serializers = result_serializers
        self.user_endpoint_config = user_endpoint_config

    def add(self, *args: Any, endpoint_id: Any, function_id: Any, **kwargs: Any) -> None:
        """Add a call of ``function_id`` on ``endpoint_id`` with these arguments."""
        s = self._serializer
        if kwargs:
            serialized_kwargs = s.serialize(kwargs)
        else:
            if self._no_kwargs is None:
                self._no_kwargs = s.serialize({})
            serialized_kwargs = self._no_kwargs
        payload = s.pack_buffers([s.serialize(args), serialized_kwargs])
        self.tasks.append((canonical_id(endpoint_id, "endpoint_id"),
                           canonical_id(function_id, "function_id"), payload))

    def __len__(self) -> int:
        return len(self.tasks)

    def __bool__(self) -> bool:
        return bool(self.tasks)

    def __repr__(self) -> str:
        return f"<Batch of {len(self.tasks)} tasks>"
