"""Who is calling: every route depends on :func:`authenticate`.

Two kinds of bearer token identify a caller: static API tokens (``farcall server
token create``, no expiry) and OAuth access tokens from ``/auth/`` (they expire and
can be revoked). Both are looked up by their SHA-256 (briefly cached; expiry and
revocation are checked on every request), then the caller's request budget is
charged, so rate limiting is per identity, not per address. Tokens are never logged.

Unknown tokens are remembered briefly in a table of their own, so a flood of them
cannot push known tokens out of the cache, and each client address may present only
a few a second before it is answered 429 without asking the database.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from farcall_service.cache import MISSING
from farcall_service.context import ServiceContext, get_context
from farcall_service.errors import ApiError
from farcall_service.limits import address_key
from farcall_service.oauth.scopes import COMPUTE_RESOURCE_SERVER
from farcall_service.storage.interface import User
from farcall_service.tokens import hash_token

bearer = HTTPBearer(
    auto_error=False,
    description="A farcall API token (`farcall server token create USER`) or an OAuth "
    "access token for the compute scope (from `/auth/v2/oauth2/token`).",
)

#: RFC 6750 token68 characters; anything else cannot be a token this service issued.
TOKEN_RE = re.compile(r"^[A-Za-z0-9._~+/-]{8,512}=*$")


@dataclass(frozen=True)
class Identity:
    user_id: str
    name: str
    groups: frozenset[str]


@dataclass(frozen=True)
class TokenInfo:
    """What a token hash resolves to; ``expires_at`` is None for static API tokens."""

    user: User
    kind: str = "api"
    expires_at: float | None = None
    revoked: bool = False
    resource_server: str | None = None


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "UNAUTHORIZED", message, {"WWW-Authenticate": "Bearer"})


def _lookup(ctx: ServiceContext, token_hash: str) -> TokenInfo | None:
    user = ctx.store.user_for_token(token_hash)
    if user is not None:
        return TokenInfo(user)
    found = ctx.store.user_for_oauth_token(token_hash)
    if found is None:
        return None
    issued, owner = found
    return TokenInfo(owner, issued.kind, issued.expires_at, issued.revoked,
                     issued.resource_server)


class _NotCached(Exception):
    """Raised by a look-up that would need the database while on the event loop."""


def _cached(cache: Any, key: str, load: Callable[[], Any], offline: bool) -> Any:
    if offline:
        value = cache.get(key)
        if value is MISSING:
            raise _NotCached
        return value
    return cache.get_or_load(key, load)


def _look_up(ctx: ServiceContext, token_hash: str, offline: bool,
             address: str | None) -> TokenInfo | None:
    """A token the cache does not know: from the unknown tokens' table, or (paced per
    client address) from the database."""
    if ctx.bad_tokens.get(token_hash) is not MISSING:
        if address is not None:
            ctx.bad_token_addresses.failed(address_key(address))
        return None
    if offline:
        raise _NotCached
    if address is not None:
        wait = ctx.bad_token_addresses.wait(address_key(address))
        if wait:
            raise ApiError(429, "RATE_LIMITED", "too many unknown bearer tokens from your "
                           f"address; retry in {wait} s", {"Retry-After": str(wait)})
    info = _lookup(ctx, token_hash)
    if info is None:
        ctx.bad_tokens.put(token_hash, True)
        if address is not None:
            ctx.bad_token_addresses.failed(address_key(address))
    else:
        ctx.tokens.put(token_hash, info)
    return info


def resolve_token(ctx: ServiceContext, token: str, *, compute: bool = True,
                  offline: bool = False, address: str | None = None) -> User:
    """The user a bearer token stands for, or a 401 that says what is wrong with it.

    ``compute`` demands a token meant for the compute API; the userinfo route takes
    any access token of this service. ``offline`` answers from the cache only.
    ``address`` (the client's) is charged for unknown tokens.
    """
    if not TOKEN_RE.match(token):
        raise _unauthorized("the bearer token is malformed")
    token_hash = hash_token(token)
    cached = ctx.tokens.get(token_hash)
    info: TokenInfo | None = (cached if cached is not MISSING  # type: ignore[assignment]
                              else _look_up(ctx, token_hash, offline, address))
    if info is None:
        raise _unauthorized("the bearer token is not valid")
    if info.kind == "refresh":
        raise _unauthorized("a refresh token is not a bearer token; exchange it for an "
                            "access token at /auth/v2/oauth2/token")
    if info.revoked:
        raise _unauthorized("the bearer token has been revoked; log in again")
    if info.expires_at is not None and info.expires_at <= time.time():
        raise _unauthorized("the bearer token has expired; refresh it or log in again")
    if compute and info.resource_server not in (None, COMPUTE_RESOURCE_SERVER):
        raise _unauthorized(
            f"the bearer token was issued for {info.resource_server}, not for the compute "
            "API; ask for the compute scope"
        )
    return info.user


def token_stands(ctx: ServiceContext, token: str, offline: bool = False) -> bool | None:
    """Whether ``token`` still stands for its user (neither expired nor revoked), for
    a channel about to send something unasked; with ``offline``, None when only the
    database can say."""
    try:
        resolve_token(ctx, token, offline=offline)
    except _NotCached:
        return None
    except ApiError:
        return False
    return True


#: Routes an endpoint process calls; they are charged to a budget of their own.
ENDPOINT_ROUTES = "/farcall/v1/endpoints/"
ENDPOINT_BUDGET = "endpoint:"


def identify(ctx: ServiceContext, token: str, offline: bool = False,
             budget: str = "", address: str | None = None) -> Identity:
    """Who ``token`` is, charged against their request budget (``budget`` names one
    of several a caller has); ``address`` is the client's, charged for unknown tokens."""
    user = resolve_token(ctx, token, offline=offline, address=address)
    groups = _cached(ctx.memberships, user.id, lambda: ctx.store.groups_of(user.id), offline)
    retry_after = ctx.limiter.check(budget + user.id)
    if retry_after is not None:
        raise ApiError(
            429,
            "RATE_LIMITED",
            f"too many requests; retry in {retry_after} s",
            {"Retry-After": str(retry_after)},
        )
    return Identity(user.id, user.name, groups)


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Identity:
    """Every route's first step. Answered on the event loop from the caches when it
    can (almost always): a hop to a worker thread is a noticeable part of a request."""
    if credentials is None or not credentials.credentials:
        raise _unauthorized("this route needs an 'Authorization: Bearer <token>' header")
    # A user's endpoints and their SDK sessions do not use up each other's budget: an
    # endpoint's claims, results and heartbeats are paced by the protocol itself.
    budget = ENDPOINT_BUDGET if request.url.path.startswith(ENDPOINT_ROUTES) else ""
    return await identify_async(get_context(request), credentials.credentials, budget,
                                client_address(request))


def client_address(connection: HTTPConnection) -> str:
    """The client's address: the peer's, or the one a trusted proxy forwarded."""
    return connection.client.host if connection.client else ""


async def identify_async(ctx: ServiceContext, token: str, budget: str = "",
                         address: str | None = None) -> Identity:
    """:func:`identify` on the event loop, from the caches, or in a worker thread."""
    try:
        return identify(ctx, token, offline=True, budget=budget, address=address)
    except _NotCached:
        return await run_in_threadpool(identify, ctx, token, False, budget, address)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header (for WebSocket handshakes)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("this route needs an 'Authorization: Bearer <token>' header")
    return token.strip()


#: A route parameter that receives the authenticated caller.
Who = Annotated[Identity, Depends(authenticate)]
