"""Depth and size limits of the free-form JSON the service stores and sends back.

Python's JSON parser takes nesting up to its recursion limit (about 1000 levels), but
the answers' encoder gives up at about 255: a field stored deeper could never be sent
back, and every read of it, by everyone who may see it, would fail. So each such field
is checked where it arrives (:class:`JsonLimits`, on the settings' limits), a body too
deep to parse at all is refused with the same code over HTTP and the channels
(``errors.too_deep_to_parse``), and rows stored before the check are read back with
what no reader could send replaced by a note (``storage.json_columns``).

Every walk here is iterative, so no input can exhaust the stack, and stops at the
limit, so refusing costs no more than the limit's worth of work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

from farcall_service.errors import ApiError
from farcall_service.storage.json_columns import NOTE

T = TypeVar("T")


class TooDeep(ValueError):
    """Nested deeper than allowed."""


class TooLarge(ValueError):
    """Larger than allowed."""


def scan(value: Any, max_depth: int | None = None, max_bytes: int | None = None) -> int:
    """About the size of ``value`` as compact JSON, in UTF-8 bytes (escapes aside; a
    float counts as 18).

    Raises :class:`TooDeep` past ``max_depth`` levels of objects and arrays,
    :class:`TooLarge` past ``max_bytes``, and ``ValueError`` for what no strict JSON
    encoder writes back: NaN, infinities and lone surrogates (in keys too). Only
    objects and arrays go on the stack: every result report runs this on its details.
    """
    if type(value) is not dict and type(value) is not list:
        return scan([value], max_depth, max_bytes) - 2
    size = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if max_depth is not None and depth > max_depth:
            raise TooDeep(f"nested deeper than {max_depth} levels")
        size += 1 + len(item)  # brackets and commas (and colons, below)
        children = item
        if type(item) is dict:
            for key in item:
                size += (_text_size(key) if type(key) is str else 8) + 3
            children = item.values()
        for child in children:
            kind = type(child)
            if kind is str:
                size += (len(child) if child.isascii() else _text_size(child)) + 2
            elif kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind is int:
                size += 3 if -100 < child < 1000 else len(repr(child))
            elif kind is float:
                if not math.isfinite(child):
                    raise ValueError("numbers must be finite")
                size += 18
            else:  # true, false, null (anything else fails at the encoder)
                size += 5
        if max_bytes is not None and size > max_bytes:
            raise TooLarge(f"larger than {max_bytes} bytes")
    return size


def _text_size(text: str) -> int:
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None


def storable(value: T) -> T:
    """``value`` if strict JSON can hold it (a pydantic validator: ValueError if not)."""
    scan(value)
    return value


@dataclass(frozen=True)
class JsonLimits:
    """The limits on each free-form field: how deep it nests, how large it is."""

    max_depth: int = 32
    max_bytes: int = 256 * 1024

    def check(self, name: str, value: T) -> T:
        """``value`` if within the limits; else 400 ``JSON_TOO_DEEP`` or 413
        ``FIELD_TOO_LARGE``, naming the field and the limit."""
        self.measure(name, value)
        return value

    def measure(self, name: str, value: Any) -> int:
        """:meth:`check`, returning about the size of ``value`` as JSON (0 for None)."""
        if value is None:
            return 0
        size, problem = self._measure(name, value)
        if problem is not None:
            raise problem
        return size

    def problem(self, name: str, value: Any) -> ApiError | None:
        """What :meth:`check` would raise for ``value``, or None."""
        return self._measure(name, value)[1]

    def _measure(self, name: str, value: Any) -> tuple[int, ApiError | None]:
        try:
            if isinstance(value, str):
                size = len(value)
                if size > self.max_bytes or (size := _text_size(value)) > self.max_bytes:
                    raise TooLarge
                return size, None
            return scan(value, self.max_depth, self.max_bytes), None
        except TooDeep:
            return 0, ApiError(400, "JSON_TOO_DEEP",
                               f"{name} is nested deeper than {self.max_depth} levels")
        except TooLarge:
            return 0, ApiError(413, "FIELD_TOO_LARGE",
                               f"{name} is larger than {self.max_bytes} bytes")
        except ValueError as exc:
            return 0, ApiError(422, "INVALID_REQUEST", f"{name}: {exc}")

    def outcome_fields(
        self, details: dict[str, Any] | None, exception_data: str | None
    ) -> tuple[dict[str, Any] | None, str | None]:
        """A reported result's ``details`` and ``exception_data``, as they are stored.

        One result out of limits must not cost the rest of its report (an endpoint
        would resend the whole report forever), nor the result itself: whichever
        field is out of limits is dropped and ``details`` says why under
        :data:`~farcall_service.storage.json_columns.NOTE`. Without ``exception_data``
        the SDK raises the traceback text.
        """
        notes = []
        if details:
            problem = self.problem("details", details)
            if problem is not None:
                details, notes = None, [problem.message]
        if exception_data is not None:
            problem = self.problem("exception_data", exception_data)
            if problem is not None:
                exception_data = None
                notes.append(problem.message)
        if notes:
            details = {**(details or {}), NOTE: "; ".join(notes) + ": not stored"}
        return details, exception_data
