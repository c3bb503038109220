"""Who is calling: every route depends on :func:`authenticate`.

The bearer token is hashed and looked up (briefly cached), then the caller's
request budget is charged, so rate limiting is per identity, not per address.
Tokens are never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from farcall_service.context import get_context
from farcall_service.errors import ApiError
from farcall_service.tokens import hash_token

bearer = HTTPBearer(
    auto_error=False,
    description="A farcall API token, created with `farcall server token create USER`.",
)


@dataclass(frozen=True)
class Identity:
    user_id: str
    name: str
    groups: frozenset[str]


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "UNAUTHORIZED", message, {"WWW-Authenticate": "Bearer"})


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Identity:
    if credentials is None or not credentials.credentials:
        raise _unauthorized("this route needs an 'Authorization: Bearer <token>' header")
    ctx = get_context(request)
    token_hash = hash_token(credentials.credentials)
    user = ctx.tokens.get_or_load(token_hash, lambda: ctx.store.user_for_token(token_hash))
    if user is None:
        raise _unauthorized("the bearer token is not valid")
    retry_after = ctx.limiter.check(user.id)
    if retry_after is not None:
        raise ApiError(
            429,
            "RATE_LIMITED",
            f"too many requests; retry in {retry_after} s",
            {"Retry-After": str(retry_after)},
        )
    groups = ctx.memberships.get_or_load(user.id, lambda: ctx.store.groups_of(user.id))
    return Identity(user.id, user.name, groups)


#: A route parameter that receives the authenticated caller.
Who = Annotated[Identity, Depends(authenticate)]
