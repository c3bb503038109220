"""Serving a channel: requests and answers over one WebSocket (``farcall.sdk.channel``).

A channel carries a few operations of the HTTP API without an HTTP request each: the
client sends ``{"op": NAME, ...body}`` and reads exactly one answer, the route's
body or ``{"error": {"status", "code", "message"}}`` with the status and code the
route would have answered (and ``retry_after`` where it would send ``Retry-After``).
The caller is authenticated at the handshake, and again (from the caches) and
charged to its rate-limit budget with every message, so a revoked or expired token
stops working on an open channel too. The channel stays open after an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError

from farcall_service.auth import Identity, bearer_token, identify_async
from farcall_service.context import get_context
from farcall_service.errors import ApiError, describe_validation

log = logging.getLogger(__name__)

#: An operation: the model its body is validated with, and what answers it.
Operation = tuple[type[BaseModel], Callable[[Identity, Any], Awaitable[dict[str, Any]]]]


async def serve(
    websocket: WebSocket,
    operations: Mapping[str, Operation],
    budget: str = "",
    admit: Callable[[Identity], Awaitable[None]] | None = None,
) -> None:
    """Serve one channel until it closes. ``admit`` may refuse the caller (ApiError)."""
    ctx = get_context(websocket)
    await websocket.accept()
    try:
        token = bearer_token(websocket.headers.get("authorization"))
        who = await identify_async(ctx, token, budget)
        if admit is not None:
            await admit(who)
    except ApiError as exc:
        await websocket.send_text(json.dumps(_error(exc)))
        await websocket.close(1008)
        return
    # The size limit lets a client refuse an oversized message itself: the close
    # (1009) that answers one can be lost when the connection is reset after it.
    await websocket.send_text(json.dumps({"ok": True, "max_message": ctx.settings.max_body_bytes}))

    async def answer(text: str | bytes | None) -> dict[str, Any]:
        try:
            try:
                message = json.loads(text or "")
            except ValueError:
                raise ApiError(400, "MALFORMED_JSON", "the message is not valid JSON") from None
            name = message.pop("op", None) if isinstance(message, dict) else None
            if name not in operations:
                raise ApiError(400, "UNKNOWN_OPERATION",
                               f"'op' must be one of {sorted(operations)}, not {name!r}")
            model, handler = operations[name]
            try:
                body = model.model_validate(message)
            except ValidationError as exc:
                raise ApiError(422, "INVALID_REQUEST",
                               describe_validation(list(exc.errors()))) from None
            return await handler(await identify_async(ctx, token, budget), body)
        except ApiError as exc:
            return _error(exc)
        except Exception:
            log.exception("unhandled error on a channel (%s)", websocket.url.path)
            return {"error": {"status": 500, "code": "INTERNAL_ERROR",
                              "message": "internal error; the service log has details"}}

    async def respond(text: str | bytes | None) -> None:
        result = await answer(text)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # closed meanwhile
            await websocket.send_text(json.dumps(result, separators=(",", ":")))

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
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending


def _error(exc: ApiError) -> dict[str, Any]:
    error: dict[str, Any] = {"status": exc.status, "code": exc.code, "message": exc.message}
    retry_after = (exc.headers or {}).get("Retry-After")
    if retry_after:
        error["retry_after"] = int(retry_after)
    return {"error": error}
