"""A channel to the service: requests and answers over one WebSocket.

A message on an open WebSocket costs both sides a fraction of an HTTP request
(measured: 187 against 477 µs for a small request and its answer), which is most of
a round trip when the service is on the same machine. The SDK sends submissions and
result waits over a channel, an endpoint its claims and results; every other call
stays HTTP. Each thread opens a channel of its own, and a channel carries one
request at a time.

A channel answers as the HTTP routes do: :class:`FarcallAPIError` for an error
answer, :class:`ServiceUnreachable` when the connection fails or an answer does not
come in time (the connection is then dropped, and the next request opens a new
one). The service checks the token a channel was opened with on every request; when
it has expired (OAuth access tokens do), the channel opens again with a fresh one
from the authorizer and resends the refused request. A service without the channel
(an older farcall, or a proxy that does not pass WebSockets on) is asked through
the ``fallback`` instead, over HTTP.

The service may also push messages nobody asked for: the results of tasks a
submission asked it to follow (``{"push": "results", "results": {...}}``). They are
handed to ``on_push`` whenever they are read: while an answer is awaited, by
:meth:`Channel.listen` and by :meth:`Channel.collect`. ``following`` holds the tasks
whose results will come that way; it is emptied when the connection drops.
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Protocol

from farcall import frames
from farcall.plugins.types import Authorizer
from farcall.sdk.errors import FarcallAPIError, ServiceUnreachable

if TYPE_CHECKING:
    import socket

log = logging.getLogger(__name__)
#: What the connections log: websockets logs every handshake header at DEBUG, the
#: channel's token included, so this logger never passes DEBUG on.
_connection_log = logging.getLogger(f"{__name__}.connection")
_connection_log.setLevel(logging.INFO)

#: The channel's close code for a message over the service's size limit.
MESSAGE_TOO_BIG = 1009
#: Handshake answers meaning "no WebSocket here": a service without the channel route,
#: or a proxy in front of it that does not pass WebSockets on.
NO_CHANNEL_STATUSES = (400, 403, 404, 405, 426)


class Fallback(Protocol):
    """The same requests over HTTP, for a service without the channel."""

    def ask(self, operation: str, body: dict[str, Any], timeout: float) -> Any: ...
    def close(self) -> None: ...


#: Handed the documents of a push of results, keyed by task id.
PushHandler = Callable[[dict[str, Any]], None]


class Channel:
    def __init__(self, base_url: str, path: str, authorizer: Authorizer | None,
                 fallback: Fallback, open_timeout: float = 30.0,
                 on_push: PushHandler | None = None) -> None:
        scheme, _, rest = base_url.rstrip("/").partition("://")
        self.url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}{path}"
        self._path = path
        self._authorizer = authorizer
        self._fallback = fallback
        self._open_timeout = open_timeout
        self._ws: Any = None
        self._max_message: int | None = None  # bytes, as the service said when opened
        self._binary = False  # msgpack frames: the service offered them when opened
        self._opened: weakref.finalize | None = None
        self._over_http = False
        self._on_push = on_push
        #: Tasks whose results the service pushes on the open connection.
        self.following: set[str] = set()

    def ask(self, operation: str, body: dict[str, Any], timeout: float,
            meanwhile: Callable[[], None] | None = None) -> Any:
        """Send one request (an operation the channel carries) and return its answer.

        ``meanwhile`` runs once the request is on its way, before its answer is read:
        work that need not delay the request (over HTTP, it runs first).
        """
        if self._over_http:
            if meanwhile is not None:
                meanwhile()
            return self._fallback.ask(operation, body, timeout)
        if self._ws is not None and not self._ws.usable():
            self._drop()  # the service closed it while it sat idle
        opened_now = self._ws is None
        ws = self._ws or self._connect()
        if ws is None:  # the service has no channel: this request goes over HTTP
            return self.ask(operation, body, timeout, meanwhile)
        answer = self._exchange(ws, operation, body, timeout, meanwhile)
        if not opened_now and _status(answer) == 401:
            # The token the channel was opened with has expired (an HTTP request would
            # have carried a fresh one): open it again, with a fresh one, and resend.
            self._drop()
            ws = self._connect()
            if ws is None:
                return self.ask(operation, body, timeout)
            answer = self._exchange(ws, operation, body, timeout)
        return _answer(answer, self._route(operation))

    def follow(self, task_ids: Collection[str]) -> None:
        """The service said it pushes these tasks' results on this connection."""
        if self._ws is not None:
            self.following.update(task_ids)

    def listen(self, task_ids: Collection[str] | None, timeout: float,
               wake: socket.socket | None = None) -> bool:
        """Read pushes until the result of one of ``task_ids`` (None: of any task) has
        come (True), or ``timeout`` seconds have passed, ``wake`` became readable (see
        :meth:`Connection.recv`) or the connection failed (False)."""
        from websockets.exceptions import WebSocketException

        from farcall.sdk.websocket import Woken

        ws = self._ws
        if ws is None:
            return False
        wanted = None if task_ids is None else set(task_ids)
        deadline = time.monotonic() + timeout
        try:
            while True:
                message = frames.decode(ws.recv(deadline - time.monotonic(), wake))
                if not _is_push(message):
                    raise ValueError("an answer to no request")
                results = self._pushed(message)
                heard = bool(results) if wanted is None else not wanted.isdisjoint(results)
                if heard:
                    return True
        except (TimeoutError, Woken):
            return False  # nothing came: the connection is as good as it was
        except _CallerFailed as failed:
            self._drop()
            raise failed.error from None
        except (OSError, ValueError, WebSocketException) as exc:
            log.info("the channel to %s failed while listening (%s)", self.url,
                     type(exc).__name__)
            self._drop()
            return False

    def collect(self) -> None:
        """Take in the pushes that have already arrived, without waiting."""
        if self.following and self._ws is not None:
            if not self._ws.usable():
                self._drop()
            else:
                self.listen((), 0)

    @property
    def over_http(self) -> bool:
        """True once the service turned out to have no channel."""
        return self._over_http

    def close(self) -> None:
        self._drop()
        self._fallback.close()

    def _exchange(self, ws: Any, operation: str, body: dict[str, Any], timeout: float,
                  meanwhile: Callable[[], None] | None = None) -> Any:
        from websockets.exceptions import ConnectionClosed, WebSocketException

        message = frames.encode({"op": operation, **body}, self._binary)  # JSON is ASCII
        if self._max_message is not None and len(message) > self._max_message:
            raise FarcallAPIError("SEND", self._route(operation), 413, "REQUEST_TOO_LARGE",
                                  f"the message is {len(message)} bytes; the service accepts "
                                  f"{self._max_message}")
        deadline = time.monotonic() + timeout
        try:
            ws.send(message)
            if meanwhile is not None:
                try:
                    meanwhile()
                except BaseException as exc:
                    raise _CallerFailed(exc) from None
            while True:
                answer = frames.decode(ws.recv(timeout=deadline - time.monotonic()))
                if not _is_push(answer):
                    return answer
                self._pushed(answer)
        except _CallerFailed as failed:
            self._drop()  # the answer would be taken for the next request's
            raise failed.error from None
        except ConnectionClosed as exc:
            self._drop()
            if exc.rcvd is not None and exc.rcvd.code == MESSAGE_TOO_BIG:
                raise FarcallAPIError("SEND", self._route(operation), 413, "REQUEST_TOO_LARGE",
                                      "the message is larger than the service accepts") from None
            raise self._unreachable(operation, exc) from None
        except (TimeoutError, OSError, ValueError, WebSocketException) as exc:
            self._drop()  # a late answer would be taken for the next request's
            raise self._unreachable(operation, exc) from None

    def _pushed(self, message: dict[str, Any]) -> dict[str, Any]:
        """Hand a push's results to ``on_push``; return them."""
        results = message.get("results")
        if not isinstance(results, dict):
            return {}
        self.following.difference_update(results)
        if self._on_push is not None:
            try:
                self._on_push(results)
            except BaseException as exc:
                raise _CallerFailed(exc) from None
        return results

    def _drop(self) -> None:
        self.following.clear()
        opened, self._ws, self._opened = self._opened, None, None
        if opened is not None:
            with contextlib.suppress(Exception):  # a broken connection: nothing to close
                opened()

    def _connect(self) -> Any:
        from websockets.exceptions import InvalidStatus, WebSocketException

        from farcall.sdk.websocket import Connection

        headers = {}
        header = self._authorizer.get_authorization_header() if self._authorizer else None
        if header:
            headers["Authorization"] = header
        try:
            ws = Connection(self.url, headers, self._open_timeout, _connection_log)
        except InvalidStatus as exc:
            if exc.response.status_code not in NO_CHANNEL_STATUSES:
                raise self._unreachable("connect", exc) from None
            log.info("the service has no channel at %s (%d); using HTTP requests",
                     self._path, exc.response.status_code)
            self._over_http = True
            return None
        except (TimeoutError, OSError, WebSocketException) as exc:
            raise self._unreachable("connect", exc) from None
        try:
            try:
                hello = frames.decode(ws.recv(timeout=self._open_timeout))
            except (TimeoutError, OSError, ValueError, WebSocketException) as exc:
                raise self._unreachable("connect", exc) from None
            _answer(hello, self._route("connect"))  # the token or the endpoint refused
        except BaseException:
            ws.close()
            raise
        limit = hello.get("max_message") if isinstance(hello, dict) else None
        self._max_message = limit if isinstance(limit, int) else None
        # msgpack frames where the service offers them (farcall.frames says why).
        offered = hello.get("frames") if isinstance(hello, dict) else None
        self._binary = isinstance(offered, list) and frames.MSGPACK in offered \
            and frames.MSGPACK in frames.offered()
        # Closed when the channel is dropped, or collected with its client or thread.
        self._ws, self._opened = ws, weakref.finalize(self, ws.close)
        return ws

    def _route(self, operation: str) -> str:
        return f"{self._path} {operation}"

    def _unreachable(self, operation: str, exc: BaseException) -> ServiceUnreachable:
        return ServiceUnreachable(
            f"{self._route(operation)}: the channel to {self.url} failed "
            f"({type(exc).__name__}: {str(exc)[:200]})")


class _CallerFailed(Exception):
    """What the caller's code (``meanwhile``, ``on_push``) raised, kept apart from the
    connection's own failures."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


def _is_push(message: Any) -> bool:
    return isinstance(message, dict) and "push" in message


def _status(answer: Any) -> int | None:
    error = answer.get("error") if isinstance(answer, dict) else None
    return int(error.get("status") or 500) if isinstance(error, dict) else None


def _answer(answer: Any, route: str) -> Any:
    error = answer.get("error") if isinstance(answer, dict) else None
    if error is not None:
        raise FarcallAPIError("SEND", route, int(error.get("status") or 500),
                              str(error.get("code") or "ERROR"), str(error.get("message") or ""))
    return answer
