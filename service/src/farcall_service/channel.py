"""Serving a channel: requests and answers over one WebSocket (``farcall.sdk.channel``).

A channel carries a few operations of the HTTP API without an HTTP request each: the
client sends ``{"op": NAME, ...body}`` and reads exactly one answer, the route's
body or ``{"error": {"status", "code", "message"}}`` with the status and code the
route would have answered (and ``retry_after`` where it would send ``Retry-After``).
The caller is authenticated at the handshake, and again (from the caches) and
charged to its rate-limit budget with every message, so a revoked or expired token
stops working on an open channel too. The channel stays open after an error.

A channel may also send messages nobody asked for, ``{"push": KIND, ...}``, after the
answers already on their way (the SDK's channel pushes the results of the tasks it
submitted: ``farcall_service.following``). A client that stops reading them has its
channel closed (code 1013) once pushes of ``PUSH_LIMIT`` times the largest message
the service takes wait to be sent.

Messages are JSON in text frames, or msgpack in binary frames (``farcall.frames``):
the first message offers both, each answer takes the form of its request, and pushes
the form of the last request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from farcall import frames
from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError

from farcall_service.auth import Identity, bearer_token, client_address, identify_async
from farcall_service.context import get_context
from farcall_service.errors import ApiError, describe_validation, too_deep_to_parse

log = logging.getLogger(__name__)

#: An operation: the model its body is validated with, and what answers it.
Operation = tuple[type[BaseModel], Callable[[Identity, Any], Awaitable[dict[str, Any]]]]

#: How many of the largest messages' worth of pushes may wait to be sent.
PUSH_LIMIT = 4
#: The close code for a client that does not read its pushes ("try again later").
NOT_READING = 1013


class Opened:
    """An admitted channel: the token it was opened with, and what it sends unasked."""

    def __init__(self, websocket: WebSocket, token: str, limit: int) -> None:
        self.token = token
        self._websocket = websocket
        self._limit = limit
        self._queue: deque[str | bytes] = deque()
        self._queued = 0
        #: Pushes go as msgpack once the client's last request came as msgpack.
        self.binary = False
        self._sender: asyncio.Future[None] | None = None
        self._closer: asyncio.Future[None] | None = None  # referenced until done
        self._on_close: list[Callable[[], None]] = []
        self.closed = False

    def push(self, message: dict[str, Any]) -> None:
        """Send ``message`` after everything sent so far; on the event loop."""
        if self.closed:
            return
        text = frames.encode(message, self.binary)
        if self._queued + len(text) > self._limit:
            log.warning("closing a channel whose client has not read %d characters of "
                        "pushes (%s)", self._queued, self._websocket.url.path)
            self.shut(NOT_READING)
            return
        self._queue.append(text)
        self._queued += len(text)
        if self._sender is None:
            self._sender = asyncio.ensure_future(self._send_queued())

    def on_close(self, callback: Callable[[], None]) -> None:
        self._on_close.append(callback)

    def shut(self, code: int) -> None:
        """:meth:`close`, and close the WebSocket with ``code``."""
        self.close()
        self._closer = asyncio.ensure_future(self._close_websocket(code))

    async def _close_websocket(self, code: int) -> None:
        with contextlib.suppress(Exception):  # closed by the client meanwhile
            await self._websocket.close(code)

    def close(self) -> None:
        """Drop what is still to be pushed and run the ``on_close`` callbacks."""
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        self._queued = 0
        if self._sender is not None:
            self._sender.cancel()
        for callback in self._on_close:
            callback()

    async def _send_queued(self) -> None:
        try:
            while self._queue:
                text = self._queue.popleft()
                await _send(self._websocket, text)
                self._queued -= len(text)
        except Exception:  # closed meanwhile: the channel's loop ends and closes this
            self._queue.clear()
            self._queued = 0
        finally:
            self._sender = None


async def serve(
    websocket: WebSocket,
    operations: Mapping[str, Operation],
    budget: str = "",
    admit: Callable[[Identity], Awaitable[None]] | None = None,
    opened: Callable[[Opened], None] | None = None,
) -> None:
    """Serve one channel until it closes. ``admit`` may refuse the caller (ApiError);
    ``opened`` is handed the channel once it is admitted, to push on it."""
    ctx = get_context(websocket)
    await websocket.accept()
    try:
        token = bearer_token(websocket.headers.get("authorization"))
        who = await identify_async(ctx, token, budget, client_address(websocket))
        if admit is not None:
            await admit(who)
    except ApiError as exc:
        await websocket.send_text(json.dumps(_error(exc)))
        await websocket.close(1008)
        return
    # The size limit lets a client refuse an oversized message itself: the close
    # (1009) that answers one can be lost when the connection is reset after it.
    await websocket.send_text(json.dumps({"ok": True, "max_message": ctx.settings.max_body_bytes,
                                          "frames": frames.offered()}))
    channel = Opened(websocket, token, PUSH_LIMIT * ctx.settings.max_body_bytes)
    if opened is not None:
        opened(channel)

    async def answer(text: str | bytes | None) -> dict[str, Any]:
        try:
            try:
                message = frames.decode(text or "")
            except (RecursionError, frames.TooDeep):  # as HTTP answers the same body
                raise too_deep_to_parse() from None
            except ValueError:
                form = "msgpack" if isinstance(text, bytes) else "JSON"
                raise ApiError(400, "MALFORMED_JSON", f"the message is not valid {form}") from None
            name = message.pop("op", None) if isinstance(message, dict) else None
            if not isinstance(name, str) or name not in operations:
                raise ApiError(400, "UNKNOWN_OPERATION",
                               f"'op' must be one of {sorted(operations)}, not {name!r}")
            model, handler = operations[name]
            try:
                body = model.model_validate(message)
            except ValidationError as exc:
                raise ApiError(422, "INVALID_REQUEST",
                               describe_validation([dict(e) for e in exc.errors()])) from None
            return await handler(await identify_async(ctx, token, budget), body)
        except ApiError as exc:
            return _error(exc)
        except Exception:
            log.exception("unhandled error on a channel (%s)", websocket.url.path)
            return {"error": {"status": 500, "code": "INTERNAL_ERROR",
                              "message": "internal error; the service log has details"}}

    async def respond(text: str | bytes | None) -> None:
        channel.binary = isinstance(text, bytes)
        result = await answer(text)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # closed meanwhile
            await _send(websocket, frames.encode(result, channel.binary))

    # One request at a time, answered in order; the loop keeps listening while one
    # waits (a claim, a result wait), so a channel that closes meanwhile ends it at once.
    pending: asyncio.Future[None] | None = None
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(respond(message.get("text") or message.get("bytes")))
    finally:
        channel.close()
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending


async def _send(websocket: WebSocket, message: str | bytes) -> None:
    if isinstance(message, bytes):
        await websocket.send_bytes(message)
    else:
        await websocket.send_text(message)


def _error(exc: ApiError) -> dict[str, Any]:
    error: dict[str, Any] = {"status": exc.status, "code": exc.code, "message": exc.message}
    retry_after = (exc.headers or {}).get("Retry-After")
    if retry_after:
        error["retry_after"] = int(retry_after)
    return {"error": error}
