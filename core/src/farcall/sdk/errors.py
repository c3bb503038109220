"""Errors the SDK raises to its users."""

from __future__ import annotations

from farcall.errors import DeserializationError, FarcallError


class TaskPending(FarcallError):
    """The task has not finished yet; ``status`` says where it is."""

    def __init__(self, status: str) -> None:
        super().__init__(f"task pending: {status}")
        self.status = status
        self.reason = status


class TaskExecutionFailed(FarcallError):
    """The function raised on the endpoint, or the endpoint could not run it.

    Raised when the remote exception itself could not be rebuilt here; the remote
    traceback text is in ``remote_traceback`` and in the message.
    """

    def __init__(self, remote_traceback: str, completion_t: str | None = None) -> None:
        super().__init__(remote_traceback)
        self.remote_traceback = remote_traceback
        self.completion_t = completion_t

    def __str__(self) -> str:
        return f"the task failed on the endpoint:\n{self.remote_traceback}"


class TaskExpired(FarcallError):
    """The task ended long enough ago that the service has deleted it and its result
    (it keeps them for a while after a task ends: 14 days unless configured
    otherwise). The message is the service's, which names that time."""

    def __init__(self, task_id: str, message: str) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.reason = message
class TaskCancelled(FarcallError):
    """The task was cancelled (``Client.cancel``, or an Executor future's ``cancel``)
    before it produced a result; ``reason`` is the service's word on who and when."""

    def __init__(self, reason: str, completion_t: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.completion_t = completion_t

    def __str__(self) -> str:
        return f"the task was cancelled: {self.reason}"


class FarcallAPIError(FarcallError):
    """The service answered with an error: its HTTP status, ``code`` and ``message``."""

    def __init__(self, method: str, route: str, http_status: int, code: str, message: str) -> None:
        super().__init__(f"{method} {route} failed with {http_status} {code}: {message}")
        self.method = method
        self.route = route
        self.http_status = http_status
        self.code = code
        self.message = message


class ServiceUnreachable(FarcallError):
    """No answer from the service at all (connection refused, timeout)."""


class UntrustedResultError(DeserializationError):
    """A result came from an endpoint the caller does not trust, in a strategy that can
    run code when read: it was not read. The message says how to trust the endpoint."""

    def __init__(self, message: str, endpoint_id: str | None, strategy: str) -> None:
        super().__init__(message)
        self.endpoint_id = endpoint_id
        self.strategy = strategy
