"""Request limits: body size (an ASGI middleware) and a per-identity rate limit."""

from __future__ import annotations

import ipaddress
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """Refuses bodies over ``max_bytes`` with 413 before the app reads them.

    A declared ``Content-Length`` is checked up front; a chunked body is read here, up
    to one byte over the limit, and replayed to the app if it fits. Paths for which
    ``unlimited`` is true pass untouched: they stream their bodies and check a limit
    of their own (the blob uploads).
    """

    def __init__(self, app: ASGIApp, max_bytes: int,
                 unlimited: Callable[[str], bool] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.unlimited = unlimited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.unlimited and self.unlimited(scope["path"])):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                await _reject(send, 400, "BAD_REQUEST", "Content-Length is not a number")
                return
            if too_large:
                await self._too_large(send)
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await _reject(
            send,
            413,
            "REQUEST_TOO_LARGE",
            f"request bodies are limited to {self.max_bytes} bytes",
        )


async def _reject(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"code": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """A token bucket per identity: ``limit`` requests per ``window`` seconds, bursty.

    ``check`` returns None when the request may go ahead, else the seconds to wait
    (for ``Retry-After``). At most ``max_entries`` buckets are kept: a new key past it
    first drops the buckets that have refilled, then the oldest.
    """

    def __init__(self, limit: int, window: float, max_entries: int = 100_000) -> None:
        self.limit = limit
        self.rate = limit / window if window > 0 else float(limit)
        self.max_entries = max_entries
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> int | None:
        if self.limit <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_entries:
                    self._shrink(now)
                bucket = (float(self.limit), now)
            tokens, last = bucket
            tokens = min(float(self.limit), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))

    def _shrink(self, now: float) -> None:
        full = [key for key, (tokens, last) in self._buckets.items()
                if tokens + (now - last) * self.rate >= self.limit]
        for key in full:
            del self._buckets[key]
        while len(self._buckets) >= self.max_entries:
            del self._buckets[next(iter(self._buckets))]

    def __len__(self) -> int:
        return len(self._buckets)

    def snapshot(self) -> dict[str, Any]:
        return {"limit": self.limit, "rate_per_second": self.rate}


class FailureBuckets:
    """Failures by key that decay: ``burst`` at once, then one more every ``refill``
    seconds. A key's count never exceeds ``burst``, so its wait is at most one
    ``refill``; a key whose count has decayed to nothing is dropped, and past
    ``max_entries`` the least recently charged is evicted. Not thread-safe."""

    def __init__(self, burst: int, refill: float, max_entries: int) -> None:
        self.burst = burst
        self.refill = refill
        self.max_entries = max_entries
        #: key -> (failures still counted, when they were last updated)
        self._table: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _count(self, key: str, now: float) -> float:
        entry = self._table.get(key)
        if entry is None:
            return 0.0
        count = max(0.0, entry[0] - (now - entry[1]) / self.refill)
        if count == 0.0:
            del self._table[key]
        return count

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may fail once more (0 when it may now)."""
        over = self._count(key, now) - (self.burst - 1)
        return max(0.0, over * self.refill)

    def failed_since(self, key: str, now: float) -> bool:
        return self._count(key, now) > 0.0

    def charge(self, key: str, now: float) -> None:
        # Never more than ``burst``: however many failures, the wait is one ``refill``.
        self._table[key] = (min(float(self.burst), self._count(key, now) + 1.0), now)
        self._table.move_to_end(key)
        while len(self._table) > self.max_entries:
            self._table.popitem(last=False)

    def __len__(self) -> int:
        return len(self._table)


class FailureLimiter:
    """:class:`FailureBuckets` behind a lock: ``wait`` before the costly step, ``failed``
    after it failed. For unknown bearer tokens per client address (``auth.py``)."""

    def __init__(self, burst: int, refill: float, max_entries: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.buckets = FailureBuckets(burst, refill, max_entries)
        self.clock = clock
        self._lock = threading.Lock()

    def wait(self, key: str) -> int:
        """Whole seconds until ``key`` may fail again; 0 when it may now."""
        with self._lock:
            wait = self.buckets.wait(key, self.clock())
        return max(1, math.ceil(wait)) if wait > 0 else 0

    def failed(self, key: str) -> None:
        with self._lock:
            self.buckets.charge(key, self.clock())

    def __len__(self) -> int:
        with self._lock:
            return len(self.buckets)


def address_key(address: str) -> str:
    """An IPv4 address as is; an IPv6 address by its /64, which one host usually owns."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)
