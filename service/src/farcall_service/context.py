"""What every route needs, built once per application and kept on ``app.state``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from farcall_service.blobs.interface import BlobStore
from farcall_service.brokers.interface import Broker
from farcall_service.cache import TTLCache
from farcall_service.json_limits import JsonLimits
from farcall_service.limits import FailureLimiter, RateLimiter
from farcall_service.oauth.throttle import HashSlots, SignInThrottle, UserCodeThrottle
from farcall_service.settings import Settings
from farcall_service.storage.interface import Endpoint, Function, Store

if TYPE_CHECKING:
    from farcall_service.lifecycle import TaskLifecycle

T = TypeVar("T")

#: Unknown bearer tokens one client address may present at once, and then one per
#: this many seconds (more get 429 without a database look-up).
UNKNOWN_TOKENS_BURST = 30
UNKNOWN_TOKEN_REFILL = 1.0


@dataclass
class ServiceContext:
    settings: Settings
    store: Store
    #: Moves tasks to endpoints and results to waiters (``farcall_service.brokers``).
    broker: Broker
    #: Where large results and payloads are kept (``farcall_service.blobs``).
    blobs: BlobStore
    #: A task's life from submission to result (``farcall_service.lifecycle``).
    lifecycle: TaskLifecycle = field(init=False)
    limiter: RateLimiter = field(init=False)
    #: The depth and size limits of free-form fields (``farcall_service.json_limits``).
    json_limits: JsonLimits = field(init=False)
    #: Failed sign-ins per user, per address and in all, against password guessing.
    sign_ins: SignInThrottle = field(init=False)
    #: Password hashes running at once (each holds scrypt's memory).
    hash_slots: HashSlots = field(init=False)
    #: Wrong device-flow user codes per address and in all, against code guessing.
    user_codes: UserCodeThrottle = field(init=False)
    #: Token hash -> ``auth.TokenInfo``; expiry is checked on every use.
    tokens: TTLCache[str, Any] = field(init=False)
    #: Hashes of tokens the database did not know, apart so they cannot evict ``tokens``.
    bad_tokens: TTLCache[str, bool] = field(init=False)
    #: Unknown tokens per client address, so guessing costs the database little.
    bad_token_addresses: FailureLimiter = field(init=False)
    memberships: TTLCache[str, frozenset[str]] = field(init=False)
    functions: TTLCache[str, Function | None] = field(init=False)
    endpoints: TTLCache[str, Endpoint | None] = field(init=False)
    #: Threads for the hot path's store calls (see ``in_thread``).
    threads: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        # As many as anyio's default limiter allowed these calls before: a few slow
        # store calls (a write waiting for SQLite's lock) must not hold up the rest.
        self.threads = ThreadPoolExecutor(max_workers=40, thread_name_prefix="farcall-store")
        from farcall_service.lifecycle import TaskLifecycle

        ttl = self.settings.cache_ttl
        self.lifecycle = TaskLifecycle(self, self.broker)
        self.limiter = RateLimiter(self.settings.rate_limit, self.settings.rate_window)
        self.json_limits = JsonLimits(self.settings.max_json_depth, self.settings.max_field_bytes)
        self.sign_ins = SignInThrottle()
        self.hash_slots = HashSlots(self.settings.max_concurrent_hashes)
        self.user_codes = UserCodeThrottle()
        self.tokens = TTLCache(ttl)
        self.bad_tokens = TTLCache(ttl, max_entries=4096)
        self.bad_token_addresses = FailureLimiter(UNKNOWN_TOKENS_BURST, UNKNOWN_TOKEN_REFILL)
        self.memberships = TTLCache(ttl)
        self.functions = TTLCache(ttl)
        self.endpoints = TTLCache(ttl)

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread, for the hot path's blocking store calls.

        The event loop's own executor hop costs about two thirds of anyio's (which
        ``run_in_threadpool`` uses: 77 against 100-130 µs of CPU here), and a round
        trip makes two or three. As with anyio, a cancelled caller leaves the call
        to finish in its thread.
        """
        return await self.start_in_thread(fn, *args)

    def start_in_thread(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(*args)`` started in a worker thread now; the future is done when it
        returns, whatever becomes of whoever awaits it."""
        return asyncio.get_running_loop().run_in_executor(self.threads, partial(fn, *args))

    def function(self, function_id: str) -> Function | None:
        """A function for permission checks, briefly cached."""
        return self.functions.get_or_load(function_id, lambda: self.store.get_function(function_id))

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        """An endpoint for permission checks, briefly cached; not for its live status."""
        return self.endpoints.get_or_load(endpoint_id, lambda: self.store.get_endpoint(endpoint_id))


def get_context(connection: HTTPConnection) -> ServiceContext:
    """The context of a request or a WebSocket."""
    return connection.app.state.farcall


async def _context_dependency(request: Request) -> ServiceContext:
    # async on purpose: FastAPI runs a plain function dependency in a worker thread,
    # a hop that cost about 0.2 ms on every request.
    return get_context(request)


#: A route parameter that receives the service context.
Ctx = Annotated[ServiceContext, Depends(_context_dependency)]
