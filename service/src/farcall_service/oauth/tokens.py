"""OAuth access and refresh tokens: issuing them in Globus Auth's response shape.

Like API tokens they carry 256 random bits and are stored only as their SHA-256.
Access tokens expire; refresh tokens are replaced on every use (rotation), and a
replayed refresh token or authorization code revokes the whole login it came from,
since only a thief would present one twice.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from farcall_service.storage.interface import IssuedToken, Store
from farcall_service.tokens import hash_token

ACCESS_PREFIX = "fca_"
REFRESH_PREFIX = "fcr_"


class OAuthError(Exception):
    """An RFC 6749 error answer: ``error`` code, human ``description``, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def new_grant_id() -> str:
    return str(uuid.uuid4())


def issue_tokens(
    store: Store,
    *,
    user_id: str,
    client_id: str,
    scopes: dict[str, str],
    grant_id: str,
    refresh: bool,
    access_ttl: float,
    refresh_ttl: float,
    now: float,
) -> dict[str, Any]:
    """Tokens for each resource server in ``scopes``; the first is the main answer and
    the others are ``other_tokens``, as globus-sdk's token responses expect."""
    records: list[IssuedToken] = []
    answers: list[dict[str, Any]] = []
    for server, scope in scopes.items():
        access = ACCESS_PREFIX + secrets.token_urlsafe(32)
        records.append(
            IssuedToken(hash_token(access), "access", user_id, client_id, scope, server,
                        grant_id, now + access_ttl)
        )
        answer: dict[str, Any] = {
            "access_token": access,
            "expires_in": int(access_ttl),
            "resource_server": server,
            "token_type": "Bearer",
            "scope": scope,
            "state": "_default",
        }
        if refresh:
            token = REFRESH_PREFIX + secrets.token_urlsafe(32)
            records.append(
                IssuedToken(hash_token(token), "refresh", user_id, client_id, scope, server,
                            grant_id, now + refresh_ttl)
            )
            answer["refresh_token"] = token
        answers.append(answer)
    store.save_oauth_tokens(records)
    return {**answers[0], "other_tokens": answers[1:]}
