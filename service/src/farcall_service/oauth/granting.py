"""Issuing and revoking a grant's tokens with the service's settings and token cache:
shared by every grant of the token endpoint (``routes``) and the device flow
(``device``)."""

from __future__ import annotations

import time
from typing import Any

from farcall_service.context import ServiceContext
from farcall_service.oauth.clients import CallingClient
from farcall_service.oauth.tokens import issue_tokens


def issue(ctx: ServiceContext, client: CallingClient, user_id: str, scopes: dict[str, str],
          grant_id: str, refresh: bool, now: float | None = None) -> dict[str, Any]:
    """Tokens for ``user_id`` through ``client``, with the service's lifetimes."""
    settings = ctx.settings
    return issue_tokens(
        ctx.store, user_id=user_id, client_id=client.id, scopes=scopes, grant_id=grant_id,
        refresh=refresh, access_ttl=settings.access_token_ttl,
        refresh_ttl=settings.refresh_token_ttl, now=time.time() if now is None else now,
    )


def revoke_grant(ctx: ServiceContext, grant_id: str) -> None:
    """Revoke every token of the grant, and forget them in this process's cache at once."""
    for token_hash in ctx.store.revoke_grant(grant_id):
        ctx.tokens.invalidate(token_hash)
